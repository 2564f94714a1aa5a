//! The pages' WebSocket connection to `/ws` on the page's own host (the calculator and the chat).
//!
//! A [`Connection`] opens nothing until the first [`Connection::send`] (or
//! [`Connection::connect`]); a send after the socket dropped opens a fresh one. Outgoing
//! [`ClientMessage`]s are queued on a channel and written once the socket is open; incoming frames
//! are decoded as [`ServerMessage`]s and handed, with the news that the socket closed, to the
//! callback given to [`Connection::new`]. An owner that must act when a socket (re)opens, such as
//! the chat resuming its answer after a drop, registers [`Connection::on_open`]. Dropping the
//! `Connection` closes the socket. Frames are decoded by [`ServerMessage::from_frame`] (the
//! derived `Deserialize` is heavier in the bundle).
//!
//! When the page holds a session token (see [`super::http::stored_session`]), it is sent as the
//! `session` query parameter, for browsers that block the session cookie.
//!
//! Concurrency: single-threaded (the browser's event loop). One task per socket owns both halves
//! and ends when the socket closes or the `Connection` is dropped.

use crate::protocol::{ClientMessage, ServerMessage};

/// What the connection reports to its owner.
#[derive(Clone, Debug, PartialEq)]
pub enum SocketEvent {
    /// A decoded message from the server.
    Message(ServerMessage),
    /// The socket failed or was closed by the server; the reason is for people. The next send
    /// opens a new socket.
    Closed(String),
}

/// A lazily opened WebSocket to `/ws`.
pub struct Connection {
    #[cfg(feature = "hydrate")]
    inner: browser::Lazy,
}

#[cfg(feature = "hydrate")]
impl Connection {
    /// A connection that will report to `on_event`; nothing is opened yet.
    pub fn new(on_event: impl Fn(SocketEvent) + 'static) -> Self {
        Connection {
            inner: browser::Lazy::new(std::rc::Rc::new(on_event)),
        }
    }

    /// Sends `msg`, opening the socket first if there is none. The message is written as soon as
    /// the socket is open; an error here means it could not even be queued.
    pub fn send(&self, msg: &ClientMessage) -> Result<(), String> {
        let text =
            serde_json::to_string(msg).map_err(|e| format!("could not encode the message: {e}"))?;
        self.inner.send(text)
    }

    /// Opens the socket if there is none, without sending anything (to reconnect). The outcome
    /// arrives later: the [`Connection::on_open`] callback, or [`SocketEvent::Closed`].
    pub fn connect(&self) -> Result<(), String> {
        self.inner.connect()
    }

    /// Calls `on_open` each time a socket of this connection finishes opening (the first one
    /// included), before any queued message is written. Replaces an earlier callback.
    pub fn on_open(&self, on_open: impl Fn() + 'static) {
        self.inner.set_on_open(std::rc::Rc::new(on_open));
    }
}

#[cfg(not(feature = "hydrate"))]
impl Connection {
    /// Outside the browser: a connection that never opens.
    pub fn new(_on_event: impl Fn(SocketEvent) + 'static) -> Self {
        Connection {}
    }

    /// Outside the browser there is no WebSocket: always an error.
    pub fn send(&self, _msg: &ClientMessage) -> Result<(), String> {
        Err("the WebSocket is only available in the browser".into())
    }

    /// Outside the browser there is no WebSocket: always an error.
    pub fn connect(&self) -> Result<(), String> {
        Err("the WebSocket is only available in the browser".into())
    }

    /// Outside the browser no socket ever opens: the callback is dropped.
    pub fn on_open(&self, _on_open: impl Fn() + 'static) {}
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::SocketEvent;
    use crate::protocol::ServerMessage;
    use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
    use futures::{select, SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message};
    use std::cell::RefCell;
    use std::rc::Rc;

    type Callback = Rc<dyn Fn(SocketEvent)>;
    type OpenCallback = Rc<dyn Fn()>;

    /// The outbox of the current socket, if one is open (or opening).
    pub(super) struct Lazy {
        /// Where messages and closes are reported.
        on_event: Callback,
        /// Called when a socket finishes opening; shared with the socket tasks so a callback
        /// registered later still applies.
        on_open: Rc<RefCell<Option<OpenCallback>>>,
        /// The current socket's outbox.
        outbox: RefCell<Option<UnboundedSender<String>>>,
    }

    impl Lazy {
        pub(super) fn new(on_event: Callback) -> Self {
            Lazy {
                on_event,
                on_open: Rc::new(RefCell::new(None)),
                outbox: RefCell::new(None),
            }
        }

        pub(super) fn set_on_open(&self, on_open: OpenCallback) {
            *self.on_open.borrow_mut() = Some(on_open);
        }

        /// Opens a socket unless one is open (or opening).
        pub(super) fn connect(&self) -> Result<(), String> {
            let mut outbox = self.outbox.borrow_mut();
            let open = outbox.as_ref().is_some_and(|tx| !tx.is_closed());
            if !open {
                *outbox = Some(open_socket(
                    Rc::clone(&self.on_event),
                    Rc::clone(&self.on_open),
                )?);
            }
            Ok(())
        }

        pub(super) fn send(&self, text: String) -> Result<(), String> {
            self.connect()?;
            match self.outbox.borrow().as_ref() {
                Some(tx) => tx
                    .unbounded_send(text)
                    .map_err(|_| "the connection closed".to_string()),
                None => Err("no connection".into()),
            }
        }
    }

    /// `ws://` or `wss://` (matching the page) + the page's own host + `/ws`, plus
    /// `?session=<token>` when the page holds a session token.
    fn socket_url() -> Result<String, String> {
        let location = web_sys::window().ok_or("no window")?.location();
        let protocol = location
            .protocol()
            .map_err(|_| "the page's protocol is unreadable")?;
        let host = location
            .host()
            .map_err(|_| "the page's host is unreadable")?;
        let scheme = if protocol == "https:" { "wss" } else { "ws" };
        let query = match crate::client::http::stored_session() {
            Some(token) => format!(
                "?session={}",
                String::from(js_sys::encode_uri_component(&token))
            ),
            None => String::new(),
        };
        Ok(format!("{scheme}://{host}/ws{query}"))
    }

    fn open_socket(
        on_event: Callback,
        on_open: Rc<RefCell<Option<OpenCallback>>>,
    ) -> Result<UnboundedSender<String>, String> {
        let url = socket_url()?;
        let socket = WebSocket::open(&url).map_err(|e| {
            // Never show the session token in a message.
            let shown = url.split('?').next().unwrap_or_default();
            format!("could not open {shown}: {e}")
        })?;
        let (tx, rx) = unbounded();
        leptos::task::spawn_local(pump(socket, rx, on_event, on_open));
        Ok(tx)
    }

    /// Waits until the socket is open (or failed to open); on success tells the owner through
    /// `on_open`, before anything queued is written.
    async fn opened(socket: &mut WebSocket, on_open: &RefCell<Option<OpenCallback>>) {
        // The sink is ready once the socket leaves `CONNECTING` (open, or failed).
        let _ = futures::future::poll_fn(|cx| {
            futures::Sink::<Message>::poll_ready(std::pin::Pin::new(&mut *socket), cx)
        })
        .await;
        if matches!(socket.state(), gloo_net::websocket::State::Open) {
            let callback = on_open.borrow().clone();
            if let Some(callback) = callback {
                callback();
            }
        }
    }

    /// Writes queued frames and reads incoming ones until either side ends. When the owner drops
    /// the outbox the socket is closed quietly; when the server side ends, the owner is told.
    async fn pump(
        mut socket: WebSocket,
        mut outbox: UnboundedReceiver<String>,
        on_event: Callback,
        on_open: Rc<RefCell<Option<OpenCallback>>>,
    ) {
        opened(&mut socket, &on_open).await;
        let (mut write, read) = socket.split();
        let mut read = read.fuse();
        let closed = loop {
            select! {
                out = outbox.next() => match out {
                    Some(text) => {
                        if let Err(e) = write.send(Message::Text(text)).await {
                            break Some(format!("the connection to the server failed ({e})"));
                        }
                    }
                    None => break None,
                },
                frame = read.next() => match frame {
                    Some(Ok(Message::Text(text))) => match ServerMessage::from_frame(&text) {
                        Ok(msg) => {
                            crate::client::embed::notify(&msg);
                            on_event(SocketEvent::Message(msg))
                        }
                        Err(e) => leptos::logging::warn!("ignoring a server message: {e}"),
                    },
                    Some(Ok(Message::Bytes(_))) => {}
                    Some(Err(e)) => break Some(format!("the connection to the server was lost ({e})")),
                    None => break Some("the server closed the connection".to_string()),
                },
            }
        };
        // Close the outbox before reporting, so a send made in reaction opens a new socket.
        outbox.close();
        if let Some(reason) = closed {
            on_event(SocketEvent::Closed(reason));
        }
    }
}
