//! Properties (`proxy_get_property`, `proxy_set_property`). Paths are segments
//! joined by NUL. Values use Envoy's encodings: strings as bytes, integers as
//! 8-byte little-endian, booleans as one byte, maps as serialized pairs.
//! An unknown path is `NotFound`, never a trap.

use super::logging::refuse_while_starting;
use super::{memory, pairs, status_of, Status};
use crate::context::{HostState, HttpStream};
use crate::headers::HeaderMap;
use std::net::SocketAddr;
use std::time::UNIX_EPOCH;
use wasmtime::{Caller, Linker};

fn int(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

fn text(value: &str) -> Vec<u8> {
    value.as_bytes().to_vec()
}

/// Values of one header joined by ',' (Envoy's CEL header map).
fn joined(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    let values = headers.get_all(name);
    if values.is_empty() {
        return None;
    }
    Some(values.join(&b","[..]))
}

fn header_pairs(headers: &HeaderMap) -> Vec<u8> {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in headers.entries() {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let pairs: Vec<(String, Vec<u8>)> = names
        .into_iter()
        .filter_map(|n| joined(headers, n).map(|v| (n.to_string(), v)))
        .collect();
    pairs::serialize(&pairs)
}

fn address(addr: &SocketAddr) -> Vec<u8> {
    text(&addr.to_string())
}

fn request_property(stream: &HttpStream, rest: &[&str]) -> Option<Vec<u8>> {
    // Stream facts that do not depend on the header map.
    match rest {
        ["protocol"] => return Some(text(&stream.info.protocol)),
        ["id"] => return Some(text(&stream.request_id)),
        ["time"] => {
            let nanos = stream
                .info
                .start_time
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_nanos() as i64;
            return Some(int(nanos));
        }
        _ => {}
    }
    // Header-derived values exist while Envoy still holds the request headers.
    let headers = stream.visible_request_headers()?;
    let path = || headers.get_first(":path").map(<[u8]>::to_vec);
    match rest {
        ["path"] => path(),
        ["url_path"] => path().map(|p| p.split(|b| *b == b'?').next().unwrap_or_default().to_vec()),
        ["query"] => path().map(|p| match p.iter().position(|b| *b == b'?') {
            Some(at) => p[at + 1..].to_vec(),
            None => Vec::new(),
        }),
        ["host"] => headers.get_first(":authority").map(<[u8]>::to_vec),
        ["method"] => headers.get_first(":method").map(<[u8]>::to_vec),
        ["scheme"] => headers.get_first(":scheme").map(<[u8]>::to_vec),
        ["referer"] => headers.get_first("referer").map(<[u8]>::to_vec),
        ["useragent"] => headers.get_first("user-agent").map(<[u8]>::to_vec),
        ["headers"] => Some(header_pairs(headers)),
        ["headers", name] => joined(headers, name),
        _ => None,
    }
}

fn response_property(stream: &HttpStream, rest: &[&str]) -> Option<Vec<u8>> {
    let headers = if stream.access_log_phase {
        stream.logged_response_headers.as_ref()
    } else {
        stream.response_headers.as_ref()
    };
    match rest {
        ["code"] => stream.response_code.map(|c| int(i64::from(c))),
        ["headers"] => headers.map(header_pairs),
        ["headers", name] => headers.and_then(|h| joined(h, name)),
        _ => None,
    }
}

fn connection_property(stream: &HttpStream, rest: &[&str]) -> Option<Vec<u8>> {
    let tls = stream.info.tls.as_ref();
    match rest {
        ["mtls"] => Some(vec![u8::from(tls.is_some_and(|t| t.peer_certificate))]),
        ["tls_version"] => tls.map(|t| text(&t.version)),
        ["requested_server_name"] => Some(text(tls.and_then(|t| t.sni.as_deref()).unwrap_or(""))),
        ["id"] => Some(stream.info.connection_id.to_le_bytes().to_vec()),
        _ => None,
    }
}

/// Resolves a property for the active context.
pub(crate) fn lookup(state: &HostState, segments: &[&str]) -> Result<Vec<u8>, Status> {
    let plugin = &state.plugin;
    let node = |rest: &[&str]| match rest {
        ["id"] => Some(text(&plugin.node.id)),
        ["cluster"] => Some(text(&plugin.node.cluster)),
        _ => None,
    };
    // Plugin-level properties exist in every context.
    let plugin_value = match segments {
        ["plugin_name"] => Some(text(&plugin.name)),
        ["plugin_root_id"] => Some(text(&plugin.root_id)),
        ["plugin_vm_id"] => Some(text(&plugin.vm_id)),
        ["node", rest @ ..] => node(rest),
        ["xds", "node", rest @ ..] => node(rest),
        _ => None,
    };
    if let Some(value) = plugin_value {
        return Ok(value);
    }
    let stream = state.active_stream().ok_or(Status::NotFound)?;
    let value = match segments {
        ["request", rest @ ..] => request_property(stream, rest),
        ["response", rest @ ..] => response_property(stream, rest),
        ["connection", rest @ ..] => connection_property(stream, rest),
        ["connection_id"] => Some(stream.info.connection_id.to_le_bytes().to_vec()),
        // Envoy's upstream cluster of the route the request matched (per stream).
        ["xds", "cluster_name"] | ["cluster_name"] => stream
            .info
            .upstream_cluster
            .as_deref()
            .or(plugin.upstream_cluster.as_deref())
            .map(text),
        ["source", "address"] => Some(address(&stream.info.source)),
        ["source", "port"] => Some(int(i64::from(stream.info.source.port()))),
        ["destination", "address"] => Some(address(&stream.info.destination)),
        ["destination", "port"] => Some(int(i64::from(stream.info.destination.port()))),
        _ => None,
    };
    if let Some(value) = value {
        return Ok(value);
    }
    // Values the filter set itself (Envoy keeps them as `wasm.` filter state).
    let raw = segments.join("\0").into_bytes();
    stream
        .filter_state
        .get(&raw)
        .cloned()
        .ok_or(Status::NotFound)
}

fn get_property(
    caller: &mut Caller<'_, HostState>,
    path: (i32, i32),
    out: (i32, i32),
) -> Result<(), Status> {
    let path = memory::read(caller, path.0, path.1)?;
    let path = String::from_utf8_lossy(&path).into_owned();
    let segments: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('\0').collect()
    };
    let value = lookup(caller.data(), &segments)?;
    memory::copy_out(caller, &value, out.0, out.1)
}

fn set_property(
    caller: &mut Caller<'_, HostState>,
    path: (i32, i32),
    value: (i32, i32),
) -> Result<(), Status> {
    let path = memory::read(caller, path.0, path.1)?;
    let value = memory::read(caller, value.0, value.1)?;
    // Without a stream there is no filter state to write to (Envoy: NotFound).
    let stream = caller
        .data_mut()
        .active_stream_mut()
        .ok_or(Status::NotFound)?;
    stream.filter_state.insert(path, value);
    Ok(())
}

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_get_property",
            |mut caller: Caller<'_, HostState>,
             pp: i32,
             pl: i32,
             vpp: i32,
             vsp: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_property")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_property") {
                    return Ok(status);
                }
                Ok(status_of(get_property(&mut caller, (pp, pl), (vpp, vsp))))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_set_property",
            |mut caller: Caller<'_, HostState>,
             pp: i32,
             pl: i32,
             vp: i32,
             vl: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_set_property")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_set_property") {
                    return Ok(status);
                }
                Ok(status_of(set_property(&mut caller, (pp, pl), (vp, vl))))
            },
        )
        .map_err(super::wasm_error)?;
    Ok(())
}
