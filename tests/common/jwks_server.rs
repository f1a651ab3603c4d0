//! A key server on 127.0.0.1 for the remote-JWKS tests: counts what it is asked, and is
//! switched between key sets, slow, failing, garbage, or holding answers until released.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How the server answers key-set requests (discovery is served separately).
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with this body.
    Serve(String),
    /// This status with this body.
    Status(u16, String),
    /// The answer after a delay.
    Slow(Duration, Box<Behaviour>),
    /// No answer until `release()` (or the proxy gives up).
    Hold(Box<Behaviour>),
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: String,
    pub accept: String,
}

struct State {
    behaviour: Behaviour,
    /// Path and body of the OpenID configuration, if served.
    discovery: Option<(String, String)>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct JwksServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    released: watch::Sender<bool>,
}

impl JwksServer {
    pub async fn start(behaviour: Behaviour) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (released, _) = watch::channel(false);
        let server = JwksServer {
            addr,
            state: Arc::new(Mutex::new(State {
                behaviour,
                discovery: None,
                seen: Vec::new(),
            })),
            released,
        };
        let this = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let this = this.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let this = this.clone();
                        async move { Ok::<_, std::convert::Infallible>(this.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    /// Serves `document` (JSON) at `path`.
    pub fn serve_discovery(&self, path: &str, document: &serde_json::Value) {
        self.state.lock().unwrap().discovery = Some((path.to_string(), document.to_string()));
    }

    /// Lets held requests (and later ones) through.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests for `path` so far.
    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }

    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let seen = Seen {
            method: request.method().to_string(),
            path: request
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            host: header("host"),
            accept: header("accept"),
        };
        let (behaviour, discovery) = {
            let mut state = self.state.lock().unwrap();
            state.seen.push(seen.clone());
            (state.behaviour.clone(), state.discovery.clone())
        };
        if let Some((path, document)) = discovery {
            if path == seen.path {
                return response(200, document.into_bytes());
            }
        }
        let mut behaviour = behaviour;
        loop {
            match behaviour {
                Behaviour::Serve(body) => return response(200, body.into_bytes()),
                Behaviour::Status(status, body) => return response(status, body.into_bytes()),
                Behaviour::Slow(delay, then) => {
                    tokio::time::sleep(delay).await;
                    behaviour = *then;
                }
                Behaviour::Hold(then) => {
                    let mut released = self.released.subscribe();
                    let _ = released.wait_for(|r| *r).await;
                    behaviour = *then;
                }
            }
        }
    }
}

fn response(status: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}
