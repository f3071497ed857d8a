import path from 'node:path';

const root = path.resolve(__dirname, '../..');
const e2e = path.join(root, 'target/e2e');

export const paths = {
  root,
  e2e,
  server: process.env.EDDY_SERVER_BIN ?? path.join(root, 'target/debug/server'),
  eddy: process.env.EDDY_CLI_BIN ?? path.join(root, 'target/debug/eddy'),
  site: path.join(root, 'target/site'),
  // The tiny test models and their references, in the repository.
  fixtures: path.join(root, 'fixtures'),
  cache: process.env.EDDY_CACHE ?? path.join(root, '.cache'),
  models: path.join(e2e, 'models'),
  corrupt: path.join(e2e, 'models-corrupt'),
  fake: path.join(e2e, 'models-fake'),
  big: path.join(e2e, 'models-big'),
};
