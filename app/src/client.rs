//! The UI's handle on the engine host: requests out, events in, over a Web
//! Worker or (for tests) directly in the page. Browser only.

use std::{cell::RefCell, rc::Rc};

use wasm_bindgen::{closure::Closure, JsCast, JsValue};

use crate::protocol::{Event, Request};

type Listener = Rc<dyn Fn(&Event)>;

/// (model id, the folder's name when a folder was picked, the files).
type SendFile = Box<dyn Fn(String, Option<String>, Vec<web_sys::File>)>;

struct Inner {
    send: RefCell<Option<Box<dyn Fn(Request)>>>,
    /// A model file from the user's disk, stored under the id (not JSON: a File).
    send_file: RefCell<Option<SendFile>>,
    listeners: RefCell<Vec<Listener>>,
}

#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

thread_local! {
    static CLIENT: RefCell<Option<Client>> = const { RefCell::new(None) };
}

impl Client {
    fn empty() -> Self {
        Self { inner: Rc::new(Inner { send: RefCell::new(None), send_file: RefCell::new(None), listeners: RefCell::new(Vec::new()) }) }
    }

    fn dispatch(&self, event: &Event) {
        let listeners: Vec<Listener> = self.inner.listeners.borrow().clone();
        for l in listeners {
            l(event);
        }
    }

    /// The engine host in a module worker loaded from `url`.
    pub fn worker(url: &str) -> Self {
        let client = Self::empty();
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        match web_sys::Worker::new_with_options(url, &options) {
            Ok(worker) => {
                let c = client.clone();
                let on_message = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                    let Some(text) = e.data().as_string() else { return };
                    match serde_json::from_str::<Event>(&text) {
                        Ok(event) => c.dispatch(&event),
                        Err(err) => c.dispatch(&Event::Error { message: format!("bad event from the engine: {err}") }),
                    }
                });
                worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
                on_message.forget();
                let c = client.clone();
                let on_error = Closure::<dyn Fn(JsValue)>::new(move |e: JsValue| {
                    let message = js_sys::Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_else(|| "the engine worker failed to start".into());
                    c.dispatch(&Event::Error { message });
                });
                worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
                on_error.forget();
                let files = worker.clone();
                *client.inner.send.borrow_mut() = Some(Box::new(move |r: Request| {
                    let _ = worker.post_message(&JsValue::from_str(&serde_json::to_string(&r).expect("requests serialize")));
                }));
                *client.inner.send_file.borrow_mut() = Some(Box::new(move |id: String, folder: Option<String>, picked: Vec<web_sys::File>| {
                    let message = js_sys::Object::new();
                    let list = js_sys::Array::new();
                    for f in &picked {
                        list.push(f);
                    }
                    let _ = js_sys::Reflect::set(&message, &"open_file".into(), &id.into());
                    let _ = js_sys::Reflect::set(&message, &"folder".into(), &folder.map_or(JsValue::UNDEFINED, |f| f.into()));
                    let _ = js_sys::Reflect::set(&message, &"files".into(), &list);
                    let _ = files.post_message(&message);
                }));
            }
            Err(e) => {
                let message = format!("cannot start the engine worker: {e:?}");
                let c = client.clone();
                *client.inner.send.borrow_mut() = Some(Box::new(move |_| c.dispatch(&Event::Error { message: message.clone() })));
            }
        }
        client.install();
        client
    }

    /// The engine host in the page: `make` gets the event sink and returns the
    /// request handler and the file handler.
    pub fn in_page(make: impl FnOnce(Box<dyn Fn(Event)>) -> (Box<dyn Fn(Request)>, SendFile)) -> Self {
        let client = Self::empty();
        let c = client.clone();
        // Events are delivered on a later tick, as a worker's would be.
        let sink: Box<dyn Fn(Event)> = Box::new(move |e: Event| {
            let c = c.clone();
            wasm_bindgen_futures::spawn_local(async move { c.dispatch(&e) });
        });
        let (send, send_file) = make(sink);
        *client.inner.send.borrow_mut() = Some(send);
        *client.inner.send_file.borrow_mut() = Some(send_file);
        client.install();
        client
    }

    fn install(&self) {
        CLIENT.with(|c| *c.borrow_mut() = Some(self.clone()));
    }

    /// The client of this page, once `hydrate` made it.
    pub fn get() -> Option<Client> {
        CLIENT.with(|c| c.borrow().clone())
    }

    pub fn send(&self, request: Request) {
        if let Some(send) = self.inner.send.borrow().as_ref() {
            send(request);
        }
    }

    /// Hands a model from the user's disk to the engine: one `.gguf`, or a
    /// Hugging Face folder's files with the folder's name.
    pub fn open_files(&self, id: String, folder: Option<String>, files: Vec<web_sys::File>) {
        if let Some(send) = self.inner.send_file.borrow().as_ref() {
            send(id, folder, files);
        }
    }

    pub fn subscribe(&self, listener: impl Fn(&Event) + 'static) {
        self.inner.listeners.borrow_mut().push(Rc::new(listener));
    }
}
