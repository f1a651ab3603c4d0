//! `pods/exec`: the WebSocket stream protocol kubectl 1.30+ tries first, and the SPDY
//! upgrade it falls back to.
//!
//! WebSocket (`v5.channel.k8s.io`, or `v4.channel.k8s.io` for older clients): every
//! binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the error
//! channel carrying a `metav1.Status` (Success, or Failure with reason NonZeroExitCode and
//! the exit code as a cause), 4 resize; v5 adds 255 + channel to half-close a stream. The
//! "container" runs a few built-in commands (`echo`, `cat` (stdin to stdout), `hostname`,
//! `true`, `false`, `env`, `whoami`); anything else is `command not found`, exit 127.
//!
//! The frames are written by hand: the server side needs the handshake hash, a frame
//! writer and a reader that unmasks client frames, pings and closes, which is smaller than
//! adding tungstenite and its dependencies to the workspace.
//!
//! SPDY (`POST` with `Upgrade: SPDY/3.1`): the stand-in answers 101 with the negotiated
//! `X-Stream-Protocol-Version` and closes, without SPDY framing. kubectl then fails
//! after the upgrade (it prints an error about the closed connection), which is enough to
//! show the request got through the gateway authorized.

use std::time::Duration;

use base64::Engine;
use hyper::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::requestinfo::Query;

const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The protocols the stand-in speaks, in preference order.
pub const WEBSOCKET_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// The SPDY stream protocols, in preference order.
pub const SPDY_PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
/// The largest client message accepted.
const MAX_MESSAGE: usize = 1 << 20;
/// How long to wait for the client's close after ours (or for stdin).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

const CHANNEL_STDIN: u8 = 0;
const CHANNEL_STDOUT: u8 = 1;
const CHANNEL_STDERR: u8 = 2;
const CHANNEL_ERROR: u8 = 3;
const CHANNEL_CLOSE: u8 = 255;

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;

/// Whether the request asks to upgrade to a WebSocket.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    header_tokens(headers, "upgrade").any(|token| token.eq_ignore_ascii_case("websocket"))
        && header_tokens(headers, "connection").any(|token| token.eq_ignore_ascii_case("upgrade"))
}

/// Whether the request asks to upgrade to SPDY/3.1.
pub fn is_spdy_upgrade(headers: &HeaderMap) -> bool {
    header_tokens(headers, "upgrade").any(|token| token.eq_ignore_ascii_case("SPDY/3.1"))
}

fn header_tokens<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

/// The first of our protocols the client offers in `header` (comma-separated, possibly
/// repeated).
pub fn negotiate(headers: &HeaderMap, header: &str, ours: &[&'static str]) -> Option<&'static str> {
    let offered: Vec<&str> = header_tokens(headers, header).collect();
    ours.iter()
        .copied()
        .find(|protocol| offered.contains(protocol))
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn websocket_accept(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(WEBSOCKET_GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The exec options from the query (`command` repeated, `stdin`, `stdout`, `stderr`,
/// `tty`, `container`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub container: String,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    pub fn from_query(query: &Query) -> Self {
        let flag = |name: &str| {
            query
                .first(name)
                .is_some_and(|value| value == "true" || value == "1")
        };
        ExecOptions {
            command: query.all("command"),
            container: query.first("container").unwrap_or_default(),
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            tty: flag("tty"),
        }
    }
}

/// What a command printed and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// Whether the command reads its standard input (only `cat` does).
fn reads_stdin(command: &[String]) -> bool {
    command.first().map(String::as_str) == Some("cat") && command.len() == 1
}

/// Runs one of the built-in commands in pod `pod`.
pub fn run_command(command: &[String], pod: &str, stdin: &[u8]) -> ExecOutput {
    let arguments = command.get(1..).unwrap_or_default();
    let mut output = ExecOutput::default();
    match command.first().map(String::as_str) {
        Some("echo") => {
            let (newline, words) = match arguments.first().map(String::as_str) {
                Some("-n") => (false, &arguments[1..]),
                _ => (true, arguments),
            };
            output.stdout = words.join(" ").into_bytes();
            if newline {
                output.stdout.push(b'\n');
            }
        }
        Some("cat") if arguments.is_empty() => output.stdout = stdin.to_vec(),
        Some("hostname") => output.stdout = format!("{pod}\n").into_bytes(),
        Some("whoami") => output.stdout = b"root\n".to_vec(),
        Some("env") => {
            output.stdout = format!(
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME={pod}\nHOME=/root\n"
            )
            .into_bytes()
        }
        Some("true") => {}
        Some("false") => output.exit_code = 1,
        Some(other) => {
            output.stderr = format!("sh: {other}: not found\n").into_bytes();
            output.exit_code = 127;
        }
        None => {
            output.stderr = b"you must specify at least one command for the container\n".to_vec();
            output.exit_code = 1;
        }
    }
    output
}

/// The error channel's Status for an exit code.
pub fn exit_status(exit_code: i32) -> String {
    if exit_code == 0 {
        r#"{"metadata":{},"status":"Success"}"#.to_string()
    } else {
        format!(
            r#"{{"metadata":{{}},"status":"Failure","message":"command terminated with non-zero exit code: error executing command, exit code {exit_code}","reason":"NonZeroExitCode","details":{{"causes":[{{"reason":"ExitCode","message":"{exit_code}"}}]}}}}"#
        )
    }
}

/// One WebSocket message from the client.
#[derive(Debug, PartialEq, Eq)]
enum Message {
    Binary(Vec<u8>),
    Text,
    Close,
}

/// Runs the exec session on an upgraded connection; returns what was run, for the log.
pub async fn serve_websocket<S>(
    mut stream: S,
    protocol: &str,
    options: &ExecOptions,
    pod: &str,
) -> std::io::Result<ExecOutput>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stdin = Vec::new();
    if options.stdin && reads_stdin(&options.command) {
        // Echo stdin as it arrives, as `cat` would, until the client half-closes it (v5),
        // closes the connection, or goes quiet.
        loop {
            let message =
                match tokio::time::timeout(CLIENT_TIMEOUT, read_message(&mut stream)).await {
                    Ok(Ok(Some(message))) => message,
                    Ok(Ok(None)) | Err(_) => break,
                    Ok(Err(error)) => return Err(error),
                };
            match message {
                Message::Binary(data) if data.first() == Some(&CHANNEL_STDIN) => {
                    stdin.extend_from_slice(&data[1..]);
                    if options.stdout && data.len() > 1 {
                        write_channel(&mut stream, CHANNEL_STDOUT, &data[1..]).await?;
                    }
                }
                Message::Binary(data)
                    if protocol.starts_with("v5") && data == [CHANNEL_CLOSE, CHANNEL_STDIN] =>
                {
                    break
                }
                Message::Close => break,
                _ => {}
            }
        }
        let output = ExecOutput {
            stdout: stdin,
            ..ExecOutput::default()
        };
        finish(&mut stream, &ExecOutput::default(), options).await?;
        return Ok(output);
    }
    let output = run_command(&options.command, pod, &stdin);
    finish(&mut stream, &output, options).await?;
    Ok(output)
}

/// Writes the outputs, the exit status and a normal close, then waits for the client's
/// close.
async fn finish<S>(
    stream: &mut S,
    output: &ExecOutput,
    options: &ExecOptions,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !output.stdout.is_empty() && options.stdout {
        write_channel(stream, CHANNEL_STDOUT, &output.stdout).await?;
    }
    if !output.stderr.is_empty() {
        // With a TTY there is no stderr stream: everything goes to stdout.
        let channel = if options.tty || !options.stderr {
            CHANNEL_STDOUT
        } else {
            CHANNEL_STDERR
        };
        write_channel(stream, channel, &output.stderr).await?;
    }
    write_channel(
        stream,
        CHANNEL_ERROR,
        exit_status(output.exit_code).as_bytes(),
    )
    .await?;
    write_frame(stream, OPCODE_CLOSE, &1000u16.to_be_bytes()).await?;
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, async {
        while let Ok(Some(message)) = read_message(stream).await {
            if message == Message::Close {
                break;
            }
        }
    })
    .await;
    stream.shutdown().await
}

async fn write_channel<S: AsyncWrite + Unpin>(
    stream: &mut S,
    channel: u8,
    data: &[u8],
) -> std::io::Result<()> {
    let mut payload = Vec::with_capacity(data.len() + 1);
    payload.push(channel);
    payload.extend_from_slice(data);
    write_frame(stream, OPCODE_BINARY, &payload).await
}

/// One unmasked, final frame (servers never mask).
async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    opcode: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x80 | opcode);
    match payload.len() {
        length @ 0..=125 => frame.push(length as u8),
        length @ 126..=0xffff => {
            frame.push(126);
            frame.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            frame.push(127);
            frame.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// Reads one message (joining fragments), answering pings; `None` at end of stream.
async fn read_message<S>(stream: &mut S) -> std::io::Result<Option<Message>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut message: Option<(u8, Vec<u8>)> = None;
    loop {
        let mut header = [0u8; 2];
        match stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error),
        }
        let final_frame = header[0] & 0x80 != 0;
        let opcode = header[0] & 0x0f;
        let masked = header[1] & 0x80 != 0;
        let length = match header[1] & 0x7f {
            126 => u64::from(stream.read_u16().await?),
            127 => stream.read_u64().await?,
            length => u64::from(length),
        };
        if length > MAX_MESSAGE as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "message too large",
            ));
        }
        let mut mask = [0u8; 4];
        if masked {
            stream.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0u8; length as usize];
        stream.read_exact(&mut payload).await?;
        if masked {
            for (index, byte) in payload.iter_mut().enumerate() {
                *byte ^= mask[index % 4];
            }
        }
        match opcode {
            OPCODE_PING => write_frame(stream, OPCODE_PONG, &payload).await?,
            OPCODE_PONG => {}
            OPCODE_CLOSE => return Ok(Some(Message::Close)),
            OPCODE_CONTINUATION => match message.as_mut() {
                Some((_, data)) if data.len() + payload.len() <= MAX_MESSAGE => {
                    data.extend_from_slice(&payload)
                }
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "bad continuation",
                    ))
                }
            },
            OPCODE_BINARY | OPCODE_TEXT => message = Some((opcode, payload)),
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "unknown opcode",
                ))
            }
        }
        if final_frame && !matches!(opcode, OPCODE_PING | OPCODE_PONG) {
            if let Some((opcode, data)) = message.take() {
                return Ok(Some(if opcode == OPCODE_BINARY {
                    Message::Binary(data)
                } else {
                    Message::Text
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_from_rfc6455() {
        assert_eq!(
            websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn commands() {
        let run = |words: &[&str]| {
            run_command(
                &words.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
                "pod-1",
                b"in",
            )
        };
        assert_eq!(run(&["echo", "hi", "there"]).stdout, b"hi there\n");
        assert_eq!(run(&["echo", "-n", "hi"]).stdout, b"hi");
        assert_eq!(run(&["hostname"]).stdout, b"pod-1\n");
        assert_eq!(run(&["false"]).exit_code, 1);
        assert_eq!(run(&["nope"]).exit_code, 127);
    }

    #[tokio::test]
    async fn websocket_session_writes_stdout_status_and_close() {
        let (mut client, server) = tokio::io::duplex(4096);
        let options = ExecOptions {
            command: vec!["echo".into(), "hi".into()],
            stdout: true,
            stderr: true,
            ..ExecOptions::default()
        };
        let session = tokio::spawn(async move {
            serve_websocket(server, "v5.channel.k8s.io", &options, "p").await
        });
        let mut received = Vec::new();
        let mut buffer = [0u8; 1024];
        loop {
            let read = client.read(&mut buffer).await.unwrap();
            received.extend_from_slice(&buffer[..read]);
            if received.ends_with(&[0x88, 2, 0x03, 0xe8]) {
                break;
            }
        }
        // A masked close from the client ends the session.
        client.write_all(&[0x88, 0x80, 1, 2, 3, 4]).await.unwrap();
        session.await.unwrap().unwrap();
        assert_eq!(
            &received[..6],
            &[0x82, 4, CHANNEL_STDOUT, b'h', b'i', b'\n']
        );
        let status = exit_status(0);
        assert_eq!(
            &received[6..9],
            &[0x82, status.len() as u8 + 1, CHANNEL_ERROR]
        );
        assert_eq!(&received[9..9 + status.len()], status.as_bytes());
    }
}
