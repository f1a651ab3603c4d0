//! A VM worker: one OS thread owning one VM instance (like an Envoy worker
//! thread with its thread-local VM). Streams, http-call completions, queue
//! notifications and the root context's timer arrive as commands; every VM
//! call is followed by the actions it deferred (continue, local reply, close).
//! A trap fails the VM's streams closed and the worker replaces its VM with a
//! fresh, reconfigured one.

use crate::context::{AfterCall, Direction, HostState, HttpCallResponse, HttpStream};
use crate::exchange::{
    BodyVerdict, Failure, HeadersVerdict, LocalReply, StreamInfo, TrailersVerdict,
};
use crate::headers::HeaderMap;
use crate::plugin_state::PluginState;
use crate::spec::LogLevel;
use crate::vm::{Trap, Vm};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::oneshot;

/// Messages to a worker thread.
pub(crate) enum WorkerCommand {
    RequestHeaders {
        context: u32,
        info: StreamInfo,
        headers: HeaderMap,
        end_of_stream: bool,
        reply: oneshot::Sender<HeadersVerdict>,
    },
    RequestBody {
        context: u32,
        chunk: Vec<u8>,
        end_of_stream: bool,
        reply: oneshot::Sender<BodyVerdict>,
    },
    RequestTrailers {
        context: u32,
        trailers: HeaderMap,
        reply: oneshot::Sender<TrailersVerdict>,
    },
    ResponseHeaders {
        context: u32,
        headers: HeaderMap,
        end_of_stream: bool,
        reply: oneshot::Sender<HeadersVerdict>,
    },
    ResponseBody {
        context: u32,
        chunk: Vec<u8>,
        end_of_stream: bool,
        reply: oneshot::Sender<BodyVerdict>,
    },
    ResponseTrailers {
        context: u32,
        trailers: HeaderMap,
        reply: oneshot::Sender<TrailersVerdict>,
    },
    /// The stream is over (or abandoned): on_log, on_done, on_delete.
    Finish {
        context: u32,
    },
    HttpCallDone {
        generation: u64,
        token: u32,
        response: HttpCallResponse,
    },
    QueueReady {
        generation: u64,
        token: u32,
    },
    /// What the filter set with `proxy_set_property` on a stream (Envoy's `wasm.` filter
    /// state), by path (segments joined by NUL): read-only.
    FilterState {
        context: u32,
        reply: oneshot::Sender<Vec<(Vec<u8>, Vec<u8>)>>,
    },
    /// The VM's linear memory size in bytes (`None` while it has no VM): read-only.
    MemorySize {
        reply: oneshot::Sender<Option<usize>>,
    },
    Shutdown,
}

/// A reply the worker owes a stream that is waiting (paused or in a callback).
enum Pending {
    Headers(oneshot::Sender<HeadersVerdict>),
    Body(oneshot::Sender<BodyVerdict>),
    Trailers(oneshot::Sender<TrailersVerdict>),
}

impl Pending {
    fn fail(self, failure: Failure) {
        match self {
            Pending::Headers(tx) => drop(tx.send(HeadersVerdict::Failed(failure))),
            Pending::Body(tx) => drop(tx.send(BodyVerdict::Failed(failure))),
            Pending::Trailers(tx) => drop(tx.send(TrailersVerdict::Failed(failure))),
        }
    }

    fn local_reply(self, reply: LocalReply) {
        match self {
            Pending::Headers(tx) => drop(tx.send(HeadersVerdict::LocalReply(reply))),
            Pending::Body(tx) => drop(tx.send(BodyVerdict::LocalReply(reply))),
            Pending::Trailers(tx) => drop(tx.send(TrailersVerdict::LocalReply(reply))),
        }
    }
}

/// The worker's bookkeeping for one stream.
struct StreamControl {
    generation: u64,
    /// The waiting reply and the direction it belongs to.
    pending: Option<(Direction, Pending)>,
    /// A failure that outlives the VM it happened in.
    failed: Option<Failure>,
    local_reply_sent: bool,
    response_headers_sent: bool,
}

/// The handle the plugin keeps; dropping the last one stops the thread.
pub(crate) struct WorkerHandle {
    pub index: usize,
    commands: Sender<WorkerCommand>,
    next_context: Arc<AtomicU32>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WorkerHandle {
    /// Starts the thread and waits until its VM is started and configured.
    pub(crate) fn start(
        plugin: Arc<PluginState>,
        configuration: Arc<Vec<u8>>,
        index: usize,
    ) -> std::sync::mpsc::Receiver<anyhow::Result<Arc<WorkerHandle>>> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (commands_tx, commands_rx) = std::sync::mpsc::channel();
        let next_context = Arc::new(AtomicU32::new(1));
        let handle = Arc::new(WorkerHandle {
            index,
            commands: commands_tx.clone(),
            next_context: next_context.clone(),
            thread: Mutex::new(None),
        });
        let (started_tx, started_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let spawned = std::thread::Builder::new()
            .name(format!("kubegate-vm-{index}"))
            .spawn(move || {
                let mut worker = Worker {
                    plugin,
                    configuration,
                    index,
                    commands: commands_tx,
                    next_context,
                    vm: None,
                    generation: 0,
                    streams: HashMap::new(),
                    next_tick: None,
                };
                match worker.build_vm() {
                    Ok(()) => {
                        let _ = started_tx.send(Ok(()));
                        worker.run(commands_rx);
                    }
                    Err(error) => {
                        let _ = started_tx.send(Err(error));
                    }
                }
            });
        match spawned {
            Err(error) => {
                let _ = ready_tx.send(Err(anyhow::anyhow!("cannot start a VM thread: {error}")));
            }
            Ok(join) => {
                *handle.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(join);
                // Hand the result over from a helper thread so callers can start many VMs at once.
                std::thread::spawn(move || {
                    let result = match started_rx.recv() {
                        Ok(Ok(())) => Ok(handle),
                        Ok(Err(error)) => Err(error),
                        Err(_) => Err(anyhow::anyhow!("the VM thread ended while starting")),
                    };
                    let _ = ready_tx.send(result);
                });
            }
        }
        ready_rx
    }

    pub(crate) fn next_context_id(&self) -> u32 {
        self.next_context.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a command; `false` when the worker is gone.
    pub(crate) fn send(&self, command: WorkerCommand) -> bool {
        self.commands.send(command).is_ok()
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(WorkerCommand::Shutdown);
        // The thread finishes by itself; joining here could block an async caller.
        drop(self.thread.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

struct Worker {
    plugin: Arc<PluginState>,
    configuration: Arc<Vec<u8>>,
    index: usize,
    commands: Sender<WorkerCommand>,
    next_context: Arc<AtomicU32>,
    vm: Option<Vm>,
    generation: u64,
    streams: HashMap<u32, StreamControl>,
    next_tick: Option<Instant>,
}

const ACTION_CONTINUE: i32 = 0;

impl Worker {
    fn log(&self, level: LogLevel, message: &str) {
        self.plugin.logs.host_line(self.index, level, message);
    }

    /// A fresh VM: instantiate, start, root context, vm_start, configure.
    fn build_vm(&mut self) -> anyhow::Result<()> {
        self.generation += 1;
        let state = HostState::new(
            self.plugin.clone(),
            self.index,
            self.configuration.clone(),
            self.commands.clone(),
            self.generation,
        );
        let mut vm = Vm::instantiate(state)?;
        let root = self.next_context.fetch_add(1, Ordering::Relaxed);
        vm.start_root(root)?;
        let after = vm.take_after_call();
        self.vm = Some(vm);
        self.apply_after_call(after);
        self.update_tick();
        Ok(())
    }

    fn run(&mut self, commands: Receiver<WorkerCommand>) {
        loop {
            let received = match self.next_tick {
                Some(at) => commands.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(WorkerCommand::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(command) => self.handle(command),
                Err(RecvTimeoutError::Timeout) => self.tick(),
            }
        }
        self.shutdown();
    }

    fn shutdown(&mut self) {
        for (_, control) in self.streams.drain() {
            if let Some((_, pending)) = control.pending {
                pending.fail(Failure {
                    status: 503,
                    reason: "plugin shut down".to_string(),
                });
            }
        }
        if let Some(vm) = self.vm.as_mut() {
            let root = vm.store.data().root_context_id;
            let _ = vm.on_done(root);
            let _ = vm.on_delete(root);
        }
        self.vm = None;
    }

    fn update_tick(&mut self) {
        let period = self.vm.as_ref().and_then(|vm| vm.store.data().tick_period);
        self.next_tick = match (period, self.next_tick) {
            (None, _) => None,
            (Some(_), Some(at)) => Some(at),
            (Some(period), None) => Some(Instant::now() + period),
        };
    }

    fn tick(&mut self) {
        let period = self.vm.as_ref().and_then(|vm| vm.store.data().tick_period);
        self.next_tick = period.map(|p| Instant::now() + p);
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let root = vm.store.data().root_context_id;
        let result = vm.on_tick(root);
        self.after_vm_call(result.map(|_| ()), None);
    }

    fn trap_failure(&self, trap: &Trap) -> Failure {
        Failure {
            status: self.plugin.trap_status,
            reason: format!("filter trapped: {trap}"),
        }
    }

    /// Fails every stream of the current VM closed and replaces the VM
    /// (Envoy: fail_open=false streams get a local reply; a failed thread-local
    /// VM is recreated for new requests).
    fn fail_vm(&mut self, trap: &Trap) {
        let failure = self.trap_failure(trap);
        self.log(
            LogLevel::Critical,
            &format!("VM {} failed, streams fail closed: {trap}", self.index),
        );
        let generation = self.generation;
        for control in self
            .streams
            .values_mut()
            .filter(|c| c.generation == generation)
        {
            if let Some((_, pending)) = control.pending.take() {
                pending.fail(failure.clone());
            }
            control.failed = Some(failure.clone());
        }
        self.vm = None;
        self.next_tick = None;
        if let Err(error) = self.build_vm() {
            self.log(
                LogLevel::Critical,
                &format!("replacing VM {} failed: {error:#}", self.index),
            );
        }
    }

    /// Common tail of every VM call: a trap fails the VM, otherwise the
    /// deferred actions run. `Ok(true)` means the call's own return value still
    /// counts (no local reply stopped the iteration for `context`).
    fn after_vm_call(&mut self, result: Result<(), Trap>, context: Option<u32>) -> bool {
        if let Err(trap) = result {
            self.fail_vm(&trap);
            return false;
        }
        let Some(vm) = self.vm.as_mut() else {
            return false;
        };
        let after = vm.take_after_call();
        // Envoy's `stopNextIteration`: after a local reply the callback's return is ignored.
        let replied = context.is_some_and(|id| {
            after
                .iter()
                .any(|a| matches!(a, AfterCall::LocalReply(c, _) if *c == id))
        });
        self.apply_after_call(after);
        self.update_tick();
        !replied
    }

    fn apply_after_call(&mut self, actions: Vec<AfterCall>) {
        for action in actions {
            match action {
                AfterCall::Continue(id, direction) => self.resume(id, direction),
                AfterCall::LocalReply(id, reply) => self.send_local_reply(id, reply),
                AfterCall::Close(id) => {
                    let failure = Failure {
                        status: 503,
                        reason: "stream reset by the filter".to_string(),
                    };
                    if let Some(control) = self.streams.get_mut(&id) {
                        if let Some((_, pending)) = control.pending.take() {
                            pending.fail(failure.clone());
                        }
                        control.failed = Some(failure);
                    }
                }
                AfterCall::RootDone => {
                    if let Some(vm) = self.vm.as_mut() {
                        let root = vm.store.data().root_context_id;
                        let _ = vm.on_delete(root);
                    }
                }
            }
        }
    }

    fn stream_state(&mut self, id: u32) -> Option<&mut HttpStream> {
        self.vm.as_mut()?.store.data_mut().streams.get_mut(&id)
    }

    /// `proxy_continue_stream`: answer the waiting callback with what the filter left.
    fn resume(&mut self, id: u32, direction: Direction) {
        let pending = match self.streams.get_mut(&id) {
            Some(control) if matches!(control.pending, Some((d, _)) if d == direction) => {
                control.pending.take()
            }
            _ => None,
        };
        let Some((_, pending)) = pending else {
            return;
        };
        self.answer_continue(id, direction, pending);
    }

    /// Sends the Continue verdict for `pending`, taking the data out of the stream.
    fn answer_continue(&mut self, id: u32, direction: Direction, pending: Pending) {
        let Some(stream) = self.stream_state(id) else {
            pending.fail(Failure {
                status: 503,
                reason: "stream state lost".to_string(),
            });
            return;
        };
        match (direction, pending) {
            (Direction::Request, Pending::Headers(tx)) => {
                let headers = stream.request_headers.take().unwrap_or_default();
                stream.logged_request_headers = headers.clone();
                let _ = tx.send(HeadersVerdict::Continue(headers));
            }
            (Direction::Request, Pending::Body(tx)) => {
                let _ = tx.send(BodyVerdict::Continue(
                    stream.request_body.take().unwrap_or_default(),
                ));
            }
            (Direction::Request, Pending::Trailers(tx)) => {
                let body = stream.request_body.take().unwrap_or_default();
                let trailers = stream.request_trailers.take().unwrap_or_default();
                let _ = tx.send(TrailersVerdict::Continue { body, trailers });
            }
            (Direction::Response, Pending::Headers(tx)) => {
                let headers = stream.response_headers.take().unwrap_or_default();
                stream.logged_response_headers = Some(headers.clone());
                let _ = tx.send(HeadersVerdict::Continue(headers));
                if let Some(control) = self.streams.get_mut(&id) {
                    control.response_headers_sent = true;
                }
            }
            (Direction::Response, Pending::Body(tx)) => {
                let _ = tx.send(BodyVerdict::Continue(
                    stream.response_body.take().unwrap_or_default(),
                ));
            }
            (Direction::Response, Pending::Trailers(tx)) => {
                let body = stream.response_body.take().unwrap_or_default();
                let trailers = stream.response_trailers.take().unwrap_or_default();
                stream.logged_response_trailers = Some(trailers.clone());
                let _ = tx.send(TrailersVerdict::Continue { body, trailers });
            }
        }
    }

    /// Envoy sends a local reply through the encoder filters, this filter's
    /// response callbacks included; the result replaces the stream's response.
    fn send_local_reply(&mut self, id: u32, reply: LocalReply) {
        let Some(control) = self.streams.get_mut(&id) else {
            return;
        };
        if control.local_reply_sent || control.failed.is_some() {
            return;
        }
        control.local_reply_sent = true;
        if control.response_headers_sent {
            // Too late to answer: the response has begun. Reset instead.
            let failure = Failure {
                status: 503,
                reason: "local reply after the response began".to_string(),
            };
            if let Some((_, pending)) = control.pending.take() {
                pending.fail(failure.clone());
            }
            control.failed = Some(failure);
            return;
        }
        let pending = control.pending.take();
        let reply = match self.filter_local_reply(id, reply) {
            Some(reply) => reply,
            None => return, // the VM trapped; its streams were failed
        };
        if let Some(stream) = self.stream_state(id) {
            let mut logged = HeaderMap::new();
            logged.add(":status", reply.status.to_string().as_bytes());
            for (n, v) in reply.headers.entries() {
                logged.add(n, v);
            }
            stream.logged_response_headers = Some(logged);
            stream.response_code = Some(reply.status);
            stream.request_headers = None;
            stream.request_body = None;
        }
        if let Some(control) = self.streams.get_mut(&id) {
            control.response_headers_sent = true;
        }
        match pending {
            Some((_, pending)) => pending.local_reply(reply),
            None => {
                // Nobody waits right now: the next command of the stream gets it.
                if let Some(control) = self.streams.get_mut(&id) {
                    control.failed = Some(Failure {
                        status: reply.status,
                        reason: "local reply already sent".to_string(),
                    });
                }
            }
        }
    }

    /// Runs on_response_headers/on_response_body over a local reply.
    fn filter_local_reply(&mut self, id: u32, reply: LocalReply) -> Option<LocalReply> {
        let mut headers = HeaderMap::new();
        headers.add(":status", reply.status.to_string().as_bytes());
        for (name, value) in reply.headers.entries() {
            headers.add(name, value);
        }
        // Envoy's local reply: content-length, and text/plain unless the filter set a type.
        if !reply.body.is_empty() {
            headers.replace("content-length", reply.body.len().to_string().as_bytes());
            if headers.get_first("content-type").is_none() {
                headers.add("content-type", b"text/plain");
            }
        }
        let count = headers.len();
        let stream = self.stream_state(id)?;
        stream.response_headers = Some(headers);
        stream.response_released = false;
        stream.response_code = Some(reply.status);
        let vm = self.vm.as_mut()?;
        let result = vm.on_response_headers(id, count, reply.body.is_empty());
        if let Err(trap) = result {
            self.fail_vm(&trap);
            return None;
        }
        let nested = self.vm.as_mut()?.take_after_call();
        self.apply_nested(nested);
        let mut body = reply.body;
        if !body.is_empty() {
            let stream = self.stream_state(id)?;
            stream.response_body = Some(body.clone());
            let size = body.len();
            let result = self.vm.as_mut()?.on_response_body(id, size, true);
            if let Err(trap) = result {
                self.fail_vm(&trap);
                return None;
            }
            let nested = self.vm.as_mut()?.take_after_call();
            self.apply_nested(nested);
            body = self
                .stream_state(id)?
                .response_body
                .take()
                .unwrap_or_default();
        }
        let stream = self.stream_state(id)?;
        let headers = stream.response_headers.take().unwrap_or_default();
        let status = headers
            .get_first_str(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(reply.status);
        let mut regular = HeaderMap::new();
        for (name, value) in headers
            .entries()
            .iter()
            .filter(|(n, _)| !n.starts_with(':'))
        {
            regular.add(name, value);
        }
        if !body.is_empty() {
            regular.replace("content-length", body.len().to_string().as_bytes());
        }
        Some(LocalReply {
            status,
            headers: regular,
            body,
            details: reply.details,
        })
    }

    /// Actions from callbacks run over a local reply: a second local reply is
    /// ignored (one reply per stream); continues are moot.
    fn apply_nested(&mut self, actions: Vec<AfterCall>) {
        let rest: Vec<AfterCall> = actions
            .into_iter()
            .filter(|a| !matches!(a, AfterCall::LocalReply(..) | AfterCall::Continue(..)))
            .collect();
        self.apply_after_call(rest);
    }

    /// Refuses a command for a stream that cannot go on; returns the pending back otherwise.
    fn check_stream(&mut self, id: u32, pending: Pending) -> Option<Pending> {
        let unavailable = Failure {
            status: 503,
            reason: "no VM available for this plugin".to_string(),
        };
        match self.streams.get(&id) {
            None => {
                pending.fail(Failure {
                    status: 503,
                    reason: "unknown stream".to_string(),
                });
                None
            }
            Some(control) => {
                if let Some(failure) = &control.failed {
                    pending.fail(failure.clone());
                    return None;
                }
                if control.generation != self.generation || self.vm.is_none() {
                    pending.fail(unavailable);
                    return None;
                }
                Some(pending)
            }
        }
    }

    fn handle(&mut self, command: WorkerCommand) {
        match command {
            WorkerCommand::RequestHeaders {
                context,
                info,
                headers,
                end_of_stream,
                reply,
            } => self.request_headers(context, info, headers, end_of_stream, reply),
            WorkerCommand::RequestBody {
                context,
                chunk,
                end_of_stream,
                reply,
            } => self.body(context, Direction::Request, chunk, end_of_stream, reply),
            WorkerCommand::ResponseBody {
                context,
                chunk,
                end_of_stream,
                reply,
            } => self.body(context, Direction::Response, chunk, end_of_stream, reply),
            WorkerCommand::RequestTrailers {
                context,
                trailers,
                reply,
            } => self.trailers(context, Direction::Request, trailers, reply),
            WorkerCommand::ResponseTrailers {
                context,
                trailers,
                reply,
            } => self.trailers(context, Direction::Response, trailers, reply),
            WorkerCommand::ResponseHeaders {
                context,
                headers,
                end_of_stream,
                reply,
            } => self.response_headers(context, headers, end_of_stream, reply),
            WorkerCommand::Finish { context } => self.finish(context),
            WorkerCommand::HttpCallDone {
                generation,
                token,
                response,
            } => self.http_call_done(generation, token, response),
            WorkerCommand::QueueReady { generation, token } => {
                if generation != self.generation {
                    return;
                }
                let Some(vm) = self.vm.as_mut() else {
                    return;
                };
                let root = vm.store.data().root_context_id;
                let result = vm.on_queue_ready(root, token);
                self.after_vm_call(result, None);
            }
            WorkerCommand::FilterState { context, reply } => {
                let state = self
                    .vm
                    .as_ref()
                    .and_then(|vm| vm.store.data().streams.get(&context))
                    .map(|stream| {
                        let mut pairs: Vec<_> = stream
                            .filter_state
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        pairs.sort();
                        pairs
                    })
                    .unwrap_or_default();
                let _ = reply.send(state);
            }
            WorkerCommand::MemorySize { reply } => {
                let _ = reply.send(self.vm.as_ref().map(Vm::memory_bytes));
            }
            WorkerCommand::Shutdown => {}
        }
    }

    fn request_headers(
        &mut self,
        id: u32,
        info: StreamInfo,
        headers: HeaderMap,
        end_of_stream: bool,
        reply: oneshot::Sender<HeadersVerdict>,
    ) {
        if self.vm.is_none() {
            // The last replacement failed; try again before refusing.
            if let Err(error) = self.build_vm() {
                self.log(
                    LogLevel::Error,
                    &format!("VM {} unavailable: {error:#}", self.index),
                );
                let _ = reply.send(HeadersVerdict::Failed(Failure {
                    status: 503,
                    reason: "no VM available for this plugin".to_string(),
                }));
                return;
            }
        }
        let generation = self.generation;
        self.streams.insert(
            id,
            StreamControl {
                generation,
                pending: Some((Direction::Request, Pending::Headers(reply))),
                failed: None,
                local_reply_sent: false,
                response_headers_sent: false,
            },
        );
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let request_id = headers.get_first_str("x-request-id").unwrap_or_default();
        let count = headers.len();
        let mut stream = HttpStream::new(info, request_id);
        stream.logged_request_headers = headers.clone();
        stream.request_headers = Some(headers);
        let state = vm.store.data_mut();
        let root = state.root_context_id;
        state.streams.insert(id, stream);
        let created = vm.context_create(id, root);
        if !self.after_vm_call(created, Some(id)) {
            return;
        }
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let result = vm.on_request_headers(id, count, end_of_stream);
        self.finish_callback(id, Direction::Request, result, end_of_stream);
    }

    fn response_headers(
        &mut self,
        id: u32,
        headers: HeaderMap,
        end_of_stream: bool,
        reply: oneshot::Sender<HeadersVerdict>,
    ) {
        let Some(pending) = self.check_stream(id, Pending::Headers(reply)) else {
            return;
        };
        let count = headers.len();
        let status = headers
            .get_first_str(":status")
            .and_then(|s| s.parse().ok());
        let Some(stream) = self.stream_state(id) else {
            pending.fail(Failure {
                status: 503,
                reason: "stream state lost".to_string(),
            });
            return;
        };
        stream.response_headers = Some(headers);
        stream.response_released = false;
        stream.response_code = status;
        if let Some(control) = self.streams.get_mut(&id) {
            control.pending = Some((Direction::Response, pending));
        }
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let result = vm.on_response_headers(id, count, end_of_stream);
        self.finish_callback(id, Direction::Response, result, end_of_stream);
    }

    fn body(
        &mut self,
        id: u32,
        direction: Direction,
        chunk: Vec<u8>,
        end_of_stream: bool,
        reply: oneshot::Sender<BodyVerdict>,
    ) {
        let Some(pending) = self.check_stream(id, Pending::Body(reply)) else {
            return;
        };
        let Some(stream) = self.stream_state(id) else {
            pending.fail(Failure {
                status: 503,
                reason: "stream state lost".to_string(),
            });
            return;
        };
        // While the filter buffers (Pause), chunks accumulate and it sees the
        // whole buffer (Envoy's StopIterationAndBuffer).
        let buffer = match direction {
            Direction::Request => {
                stream.request_released = false;
                &mut stream.request_body
            }
            Direction::Response => {
                stream.response_released = false;
                &mut stream.response_body
            }
        };
        let size = {
            let buffer = buffer.get_or_insert_with(Vec::new);
            buffer.extend_from_slice(&chunk);
            buffer.len()
        };
        if let Some(control) = self.streams.get_mut(&id) {
            control.pending = Some((direction, pending));
        }
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let result = match direction {
            Direction::Request => vm.on_request_body(id, size, end_of_stream),
            Direction::Response => vm.on_response_body(id, size, end_of_stream),
        };
        self.finish_callback(id, direction, result, end_of_stream);
    }

    fn trailers(
        &mut self,
        id: u32,
        direction: Direction,
        trailers: HeaderMap,
        reply: oneshot::Sender<TrailersVerdict>,
    ) {
        let Some(pending) = self.check_stream(id, Pending::Trailers(reply)) else {
            return;
        };
        let count = trailers.len();
        let Some(stream) = self.stream_state(id) else {
            pending.fail(Failure {
                status: 503,
                reason: "stream state lost".to_string(),
            });
            return;
        };
        match direction {
            Direction::Request => {
                stream.request_trailers = Some(trailers);
                stream.request_released = false;
            }
            Direction::Response => {
                stream.response_trailers = Some(trailers);
                stream.response_released = false;
            }
        }
        if let Some(control) = self.streams.get_mut(&id) {
            control.pending = Some((direction, pending));
        }
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let result = match direction {
            Direction::Request => vm.on_request_trailers(id, count),
            Direction::Response => vm.on_response_trailers(id, count),
        };
        // Trailers end the stream: a pause waits for continue_stream.
        self.finish_callback(id, direction, result, true);
    }

    /// After a stream callback: Continue answers now; Pause waits for
    /// `proxy_continue_stream`, except a body chunk before the end, which is
    /// buffered and answered at once.
    fn finish_callback(
        &mut self,
        id: u32,
        direction: Direction,
        result: Result<i32, Trap>,
        end_of_stream: bool,
    ) {
        let action = match result {
            Ok(action) => action,
            Err(trap) => {
                self.fail_vm(&trap);
                return;
            }
        };
        if !self.after_vm_call(Ok(()), Some(id)) {
            return;
        }
        let pending = match self.streams.get_mut(&id) {
            Some(control) if matches!(control.pending, Some((d, _)) if d == direction) => {
                control.pending.take()
            }
            _ => None,
        };
        let Some((_, pending)) = pending else {
            return; // already answered by an action
        };
        if action == ACTION_CONTINUE {
            self.answer_continue(id, direction, pending);
            return;
        }
        match pending {
            Pending::Body(tx) if !end_of_stream => {
                let _ = tx.send(BodyVerdict::Buffered);
            }
            waiting => {
                // Headers: Envoy turns StopIteration into StopAllIterationAndWatermark,
                // so nothing of the stream moves until the filter resumes it.
                if let Some(control) = self.streams.get_mut(&id) {
                    control.pending = Some((direction, waiting));
                }
            }
        }
    }

    fn finish(&mut self, id: u32) {
        let Some(control) = self.streams.remove(&id) else {
            return;
        };
        if let Some((_, pending)) = control.pending {
            pending.fail(Failure {
                status: 503,
                reason: "stream abandoned".to_string(),
            });
        }
        if control.generation != self.generation {
            return;
        }
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let Some(stream) = vm.store.data_mut().streams.get_mut(&id) else {
            return;
        };
        stream.access_log_phase = true;
        let result = vm.on_log(id);
        if !self.after_vm_call(result, None) {
            return;
        }
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let done = vm.on_done(id).map(|_| ());
        if !self.after_vm_call(done, None) {
            return;
        }
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let deleted = vm.on_delete(id);
        if self.after_vm_call(deleted, None) {
            if let Some(vm) = self.vm.as_mut() {
                vm.store.data_mut().streams.remove(&id);
            }
        }
    }

    fn http_call_done(&mut self, generation: u64, token: u32, response: HttpCallResponse) {
        if generation != self.generation {
            return;
        }
        let Some(vm) = self.vm.as_mut() else {
            return;
        };
        let counts = (
            response.headers.len(),
            response.body.len(),
            response.trailers.len(),
        );
        let state = vm.store.data_mut();
        let root = state.root_context_id;
        state.http_call_response = Some(response);
        let result = vm.on_http_call_response(root, token, counts.0, counts.1, counts.2);
        if let Some(vm) = self.vm.as_mut() {
            vm.store.data_mut().http_call_response = None;
        }
        self.after_vm_call(result, None);
    }
}
