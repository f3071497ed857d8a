//! Assistant replies as Markdown, rendered to HTML that is safe to insert:
//! raw HTML in the reply is shown as text, links are kept only for http(s)
//! and mailto, and code blocks get a copy button.

use pulldown_cmark::{html, CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:") || lower.starts_with('#')
}

pub fn to_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut events = Vec::new();
    let mut code: Option<(String, String)> = None;
    let mut in_image = false;
    for event in Parser::new_ext(markdown, options) {
        if in_image {
            in_image = !matches!(event, Event::End(TagEnd::Image));
            continue;
        }
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(l) => l.split_whitespace().next().unwrap_or("").to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((lang, body)) = code.take() {
                    let label = if lang.is_empty() { "code".to_string() } else { escape(&lang) };
                    events.push(Event::Html(CowStr::from(format!(
                        "<div class=\"code-block\"><div class=\"code-head\"><span>{label}</span><button type=\"button\" class=\"copy\" data-copy aria-label=\"Copy code\">Copy</button></div><pre><code>{}</code></pre></div>",
                        escape(&body)
                    ))));
                }
            }
            Event::Text(t) if code.is_some() => code.as_mut().expect("in a code block").1.push_str(&t),
            // Raw HTML from the model is shown, never interpreted.
            Event::Html(h) | Event::InlineHtml(h) => events.push(Event::Text(h)),
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                let dest = if safe_url(&dest_url) { dest_url } else { CowStr::from("#") };
                events.push(Event::Start(Tag::Link { link_type, dest_url: dest, title, id }));
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                // No remote images: nothing leaves the device.
                events.push(Event::Text(CowStr::from(format!("[image: {dest_url}]"))));
                in_image = true;
            }
            other => events.push(other),
        }
    }
    let mut out = String::new();
    html::push_html(&mut out, events.into_iter());
    out
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn renders_markdown_and_code_blocks() {
        let html = to_html("**Hi** `x`\n\n```rust\nfn main() { let a = 1 < 2; }\n```\n");
        assert!(html.contains("<strong>Hi</strong>"));
        assert!(html.contains("<code>x</code>"));
        assert!(html.contains("class=\"code-block\""));
        assert!(html.contains("data-copy"));
        assert!(html.contains("fn main() { let a = 1 &lt; 2; }"));
    }

    #[test]
    fn sanitizes() {
        let html = to_html("<script>alert(1)</script> <img src=x onerror=alert(1)> [a](javascript:alert(1)) ![i](http://evil/x.png)");
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(to_html("[a](javascript:void)").contains("href=\"#\""));
        let html = to_html("see ![i](http://evil/x.png) and <b onclick=x>bold</b>");
        assert!(html.contains("[image: http://evil/x.png]"), "{html}");
        assert!(!html.contains("<b "), "{html}");
    }
}
