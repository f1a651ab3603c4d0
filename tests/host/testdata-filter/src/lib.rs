//! Test filter for the kubegate host: each request names, in its `x-test-action`
//! header, which hostcall family to exercise; results travel back to the test in
//! request headers (forwarded upstream) or in a local reply.
//!
//! Plugin configuration: `key=value` lines. `reject` refuses the configuration,
//! `trap_on_configure` panics in on_configure, `tick_ms=N` starts the timer,
//! `greeting=...` is echoed in `x-greeting`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};
use std::cell::Cell;
use std::time::{Duration, UNIX_EPOCH};

thread_local! {
    // Requests this VM instance has seen: tells the tests which VM served them.
    static VM_REQUESTS: Cell<u64> = const { Cell::new(0) };
    static TICKS: Cell<u64> = const { Cell::new(0) };
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(TestRoot { config: String::new(), metrics: Metrics::default(), queue: None })
    });
}}

#[derive(Clone, Copy, Default)]
struct Metrics {
    requests: u32,
    ticks: u32,
    gauge: u32,
    histogram: u32,
}

struct TestRoot {
    config: String,
    metrics: Metrics,
    queue: Option<u32>,
}

fn config_value<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then_some(v.trim())
    })
}

impl Context for TestRoot {}

impl RootContext for TestRoot {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let vm_config = self.get_vm_configuration().unwrap_or_default();
        log::info!("vm start: {}", String::from_utf8_lossy(&vm_config));
        vm_config != b"fail_vm_start"
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.config = String::from_utf8_lossy(&config).into_owned();
        if self.config.lines().any(|l| l.trim() == "trap_on_configure") {
            panic!("configured to trap in on_configure");
        }
        if self.config.lines().any(|l| l.trim() == "reject") {
            log::error!("configuration rejected");
            return false;
        }
        self.metrics = Metrics {
            requests: proxy_wasm::hostcalls::define_metric(MetricType::Counter, "test_requests_total").unwrap(),
            ticks: proxy_wasm::hostcalls::define_metric(MetricType::Counter, "test_ticks_total").unwrap(),
            gauge: proxy_wasm::hostcalls::define_metric(MetricType::Gauge, "test_gauge").unwrap(),
            histogram: proxy_wasm::hostcalls::define_metric(MetricType::Histogram, "test_histogram").unwrap(),
        };
        if let Some(ms) = config_value(&self.config, "tick_ms").and_then(|v| v.parse().ok()) {
            self.set_tick_period(Duration::from_millis(ms));
        }
        self.queue = Some(self.register_shared_queue("test_queue"));
        log::info!("configured: {}", self.config.replace('\n', ";"));
        true
    }

    fn on_tick(&mut self) {
        let ticks = TICKS.with(|t| {
            t.set(t.get() + 1);
            t.get()
        });
        proxy_wasm::hostcalls::increment_metric(self.metrics.ticks, 1).unwrap();
        let _ = self.set_shared_data("ticks", Some(ticks.to_string().as_bytes()), None);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        if let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            let _ = self.set_shared_data("dequeued", Some(&item), None);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TestHttp {
            context_id,
            config: self.config.clone(),
            metrics: self.metrics,
            action: String::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct TestHttp {
    context_id: u32,
    config: String,
    metrics: Metrics,
    action: String,
}

fn status_name(status: Status) -> String {
    format!("{status:?}")
}

impl TestHttp {
    fn record(&self, name: &str, value: &str) {
        self.set_http_request_header(name, Some(value));
    }

    fn read_properties(&self) {
        let names = [
            "request.path",
            "request.url_path",
            "request.host",
            "request.method",
            "request.scheme",
            "request.protocol",
            "request.id",
            "source.address",
            "destination.address",
            "plugin_name",
            "plugin_root_id",
            "plugin_vm_id",
            "node.id",
            "no_such.property",
        ];
        for name in names {
            let path: Vec<&str> = name.split('.').collect();
            let value = match proxy_wasm::hostcalls::get_property(path) {
                Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                Ok(None) => "<none>".to_string(),
                Err(status) => format!("<{}>", status_name(status)),
            };
            self.record(&format!("x-prop-{}", name.replace('.', "-")), &value);
        }
        let port = self
            .get_property(vec!["source", "port"])
            .filter(|b| b.len() == 8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()).to_string())
            .unwrap_or_else(|| "<none>".to_string());
        self.record("x-prop-source-port", &port);
        let mtls = self
            .get_property(vec!["connection", "mtls"])
            .map(|b| (b == [1]).to_string())
            .unwrap_or_else(|| "<none>".to_string());
        self.record("x-prop-connection-mtls", &mtls);
        let user_agent = self
            .get_property(vec!["request", "headers", "user-agent"])
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| "<none>".to_string());
        self.record("x-prop-user-agent", &user_agent);
    }

    fn dispatch(&self, with_authority: bool) -> Action {
        let cluster = self.get_http_request_header("x-cluster").unwrap_or_default();
        let path = self.get_http_request_header("x-call-path").unwrap_or_else(|| "/auth".to_string());
        let timeout_ms: u64 = self
            .get_http_request_header("x-call-timeout-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000);
        let mut headers = vec![(":method", "GET"), (":path", path.as_str()), ("x-from-filter", "yes")];
        if with_authority {
            headers.push((":authority", "auth.local"));
        }
        match self.dispatch_http_call(&cluster, headers, None, vec![], Duration::from_millis(timeout_ms)) {
            Ok(_) => Action::Pause,
            Err(status) => {
                let body = format!("dispatch failed: {}", status_name(status));
                self.send_http_response(502, vec![("x-dispatch-error", &status_name(status))], Some(body.as_bytes()));
                Action::Pause
            }
        }
    }
}

impl Context for TestHttp {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let status = self.get_http_call_response_header(":status").unwrap_or_else(|| "<none>".to_string());
        let body = self
            .get_http_call_response_body(0, body_size)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let all = self.get_http_call_response_headers();
        let echoed = all.iter().find(|(k, _)| k == "x-echo-from-filter").map(|(_, v)| v.clone());
        self.record("x-call-status", &status);
        self.record("x-call-body", &body);
        self.record("x-call-echo", &echoed.unwrap_or_else(|| "<none>".to_string()));
        if self.action == "dispatch-then-deny" {
            self.send_http_response(401, vec![("www-authenticate", "Bearer")], Some(b"denied after call"));
            return;
        }
        self.resume_http_request();
    }

    fn on_done(&mut self) -> bool {
        log::debug!("on_done {}", self.context_id);
        true
    }
}

impl HttpContext for TestHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        proxy_wasm::hostcalls::increment_metric(self.metrics.requests, 1).unwrap();
        let served = VM_REQUESTS.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        self.record("x-vm-requests", &served.to_string());
        if let Some(greeting) = config_value(&self.config, "greeting") {
            self.record("x-greeting", greeting);
        }
        self.action = self.get_http_request_header("x-test-action").unwrap_or_default();
        match self.action.as_str() {
            "headers" => {
                let first = self.get_http_request_header("x-dup").unwrap_or_else(|| "<none>".to_string());
                let all: Vec<String> = self
                    .get_http_request_headers()
                    .into_iter()
                    .filter(|(k, _)| k == "x-dup")
                    .map(|(_, v)| v)
                    .collect();
                let names: Vec<String> = self.get_http_request_headers().into_iter().map(|(k, _)| k).collect();
                self.record("x-dup-first", &first);
                self.record("x-dup-all", &all.join("|"));
                self.record("x-header-order", &names.join(","));
                let missing = self.get_http_request_header("x-not-there");
                self.record("x-missing", if missing.is_none() { "none" } else { "some" });
                Action::Continue
            }
            "mutate" => {
                self.add_http_request_header("x-added", "1");
                self.add_http_request_header("x-multi", "second");
                self.set_http_request_header("x-replace", Some("new"));
                self.remove_http_request_header("x-remove");
                self.set_http_request_header(":path", Some("/rewritten?by=filter"));
                Action::Continue
            }
            "set-pairs" => {
                self.set_http_request_headers(vec![
                    (":method", "GET"),
                    (":path", "/replaced"),
                    (":authority", "replaced.local"),
                    (":scheme", "http"),
                    ("x-only", "this"),
                ]);
                Action::Continue
            }
            "local-reply" => {
                self.send_http_response(
                    403,
                    vec![("x-reason", "denied"), ("content-type", "text/plain")],
                    Some(b"denied by filter"),
                );
                Action::Pause
            }
            "local-reply-continue" => {
                // A filter that replies and still returns Continue: Envoy stops anyway.
                self.send_http_response(401, vec![], Some(b"no"));
                Action::Continue
            }
            "dispatch" | "dispatch-then-deny" => self.dispatch(true),
            "dispatch-no-authority" => self.dispatch(false),
            "pause-forever" => Action::Pause,
            "trap" => panic!("test filter was asked to trap"),
            "env" => {
                let name = self.get_http_request_header("x-env-name").unwrap_or_default();
                let value = std::env::var(&name).unwrap_or_else(|_| "<unset>".to_string());
                self.record("x-env-value", &value);
                self.record("x-env-count", &std::env::vars().count().to_string());
                Action::Continue
            }
            "props" => {
                self.read_properties();
                Action::Continue
            }
            "shared-get" => {
                let key = self.get_http_request_header("x-key").unwrap_or_default();
                let (value, cas) = self.get_shared_data(&key);
                let value = value.map(|v| String::from_utf8_lossy(&v).into_owned());
                self.record("x-shared-value", &value.unwrap_or_else(|| "<none>".to_string()));
                self.record("x-shared-cas", &cas.map(|c| c.to_string()).unwrap_or_else(|| "<none>".to_string()));
                Action::Continue
            }
            "shared-set" => {
                let key = self.get_http_request_header("x-key").unwrap_or_default();
                let value = self.get_http_request_header("x-value").unwrap_or_default();
                let cas = self.get_http_request_header("x-cas").and_then(|c| c.parse().ok());
                let result = match self.set_shared_data(&key, Some(value.as_bytes()), cas) {
                    Ok(()) => "ok".to_string(),
                    Err(status) => status_name(status),
                };
                self.record("x-shared-result", &result);
                Action::Continue
            }
            "metrics" => {
                proxy_wasm::hostcalls::increment_metric(self.metrics.gauge, 5).unwrap();
                proxy_wasm::hostcalls::increment_metric(self.metrics.gauge, -2).unwrap();
                proxy_wasm::hostcalls::record_metric(self.metrics.histogram, 42).unwrap();
                let requests = proxy_wasm::hostcalls::get_metric(self.metrics.requests).unwrap();
                let bad = proxy_wasm::hostcalls::increment_metric(self.metrics.requests, -1);
                self.record("x-metric-requests", &requests.to_string());
                self.record("x-metric-negative-counter", &format!("{bad:?}"));
                Action::Continue
            }
            "time" => {
                let nanos = self.get_current_time().duration_since(UNIX_EPOCH).unwrap().as_nanos();
                self.record("x-time-nanos", &nanos.to_string());
                Action::Continue
            }
            "log" => {
                log::trace!("trace line");
                log::debug!("debug line");
                log::info!("info line");
                log::warn!("warn line");
                log::error!("error line");
                println!("stdout line");
                eprintln!("stderr line");
                let level = proxy_wasm::hostcalls::get_log_level().map(|l| format!("{l:?}"));
                self.record("x-log-level", &format!("{level:?}"));
                Action::Continue
            }
            "enqueue" => {
                let value = self.get_http_request_header("x-value").unwrap_or_default();
                let queue = self.resolve_shared_queue("", "test_queue");
                let result = match queue {
                    Some(id) => format!("{:?}", self.enqueue_shared_queue(id, Some(value.as_bytes()))),
                    None => "<no queue>".to_string(),
                };
                self.record("x-enqueue", &result);
                Action::Continue
            }
            "random" => {
                // std's HashMap seeds itself from WASI random_get.
                let mut m = std::collections::HashMap::new();
                m.insert("a", 1);
                self.record("x-random", &m.len().to_string());
                Action::Continue
            }
            _ => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.action.as_str() {
            "body-upper" => {
                if !end_of_stream {
                    return Action::Pause;
                }
                let body = self.get_http_request_body(0, body_size).unwrap_or_default();
                self.set_http_request_body(0, body_size, &body.to_ascii_uppercase());
                Action::Continue
            }
            "body-deny" => {
                if !end_of_stream {
                    return Action::Pause;
                }
                let body = self.get_http_request_body(0, body_size).unwrap_or_default();
                if body.windows(6).any(|w| w == b"forbid") {
                    self.send_http_response(403, vec![], Some(b"body refused"));
                    return Action::Pause;
                }
                Action::Continue
            }
            _ => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-response-filtered", "1");
        self.remove_http_response_header("x-upstream-secret");
        if self.action == "response-status" {
            let status = self.get_http_response_header(":status").unwrap_or_default();
            self.add_http_response_header("x-seen-status", &status);
        }
        if self.action == "response-read-request" {
            // Envoy no longer exposes the request headers here: the SDK panics.
            let _ = self.get_http_request_header("x-test-action");
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.action == "response-body-upper" {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self.get_http_response_body(0, body_size).unwrap_or_default();
            self.set_http_response_body(0, body_size, &body.to_ascii_uppercase());
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let status = self.get_http_response_header(":status").unwrap_or_default();
        log::info!("access {} {} {}", self.context_id, path, status);
    }
}
