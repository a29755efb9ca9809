//! [`Link`]: a TCP forwarder that can be cut, standing between a client and
//! a server it depends on (a node and its database) to play the part of an
//! outage: while the link is down, every connection through it is closed
//! and new ones are accepted and closed at once, as a server that went away
//! or a network that dropped would; once it is up again, new connections
//! reach the server. The server itself keeps running for everyone else, so
//! a test can take one node's database away without disturbing the tests
//! that share the same server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::TestkitError;

/// A cuttable TCP forwarder to one target address; stops when dropped.
pub struct Link {
    address: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every cut: the forwarding tasks watch it and close.
    cuts: watch::Sender<u64>,
    stop: CancellationToken,
}

impl Link {
    /// Listens on an ephemeral loopback port and forwards each connection
    /// to `target`.
    pub async fn start(target: SocketAddr) -> Result<Link, TestkitError> {
        let asked = SocketAddr::from(([127, 0, 0, 1], 0));
        let bind_error = |source| TestkitError::Bind {
            addr: asked,
            source,
        };
        let listener = TcpListener::bind(asked).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let stop = CancellationToken::new();
        tokio::spawn(accept(
            listener,
            target,
            up.clone(),
            cuts.clone(),
            stop.clone(),
        ));
        Ok(Link {
            address,
            up,
            cuts,
            stop,
        })
    }

    /// Where clients connect instead of the target.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes every connection through the link and refuses new ones until
    /// [`Link::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Lets new connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cuts.send_modify(|cuts| *cuts += 1);
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((client, _)) = accepted else { continue };
        if !up.load(Ordering::SeqCst) {
            // Accepted and dropped: the client reads an end of stream, as
            // from a server that closed on it.
            continue;
        }
        let mut cut = cuts.subscribe();
        cut.mark_unchanged();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            let mut client = client;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cut.changed() => {}
            }
            // Both sockets close here, on whichever end came first.
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// An echo server: what goes through the link comes back.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        address
    }

    async fn round_trip(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        stream.write_all(b"ping").await?;
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).await?;
        Ok(answer.to_vec())
    }

    #[tokio::test]
    async fn a_cut_closes_live_connections_and_refuses_new_ones_until_restored() {
        let link = Link::start(echo().await).await.unwrap();
        let mut live = TcpStream::connect(link.address()).await.unwrap();
        assert_eq!(round_trip(&mut live).await.unwrap(), b"ping");

        link.cut();
        assert!(round_trip(&mut live).await.is_err(), "live connection kept");
        let mut during = TcpStream::connect(link.address()).await.unwrap();
        assert!(
            round_trip(&mut during).await.is_err(),
            "new connection let through"
        );

        link.restore();
        let mut after = TcpStream::connect(link.address()).await.unwrap();
        assert_eq!(round_trip(&mut after).await.unwrap(), b"ping");
    }
}
