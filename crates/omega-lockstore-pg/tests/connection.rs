//! A holder that loses its connection (a TCP proxy between it and PostgreSQL is cut): it
//! keeps nothing it cannot prove, says so clearly on renew, and reconnects.
#![allow(clippy::unwrap_used)] // test bodies: a failed step is a failed test

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Schema;
use omega_lockstore_pg::{PgLockStore, PgStoreConfig};
use omega_sched::{LockError, LockMode, LockSpec, LockStore, StoreGuard};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A loopback TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones
/// refused) and restored.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (up, pipes) = (up.clone(), pipes.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is refused
                    }
                    let target = target.clone();
                    pipes.lock().push(tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    }));
                }
            }
        });
        Proxy {
            addr,
            up,
            pipes,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for p in self.pipes.lock().drain(..) {
            p.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The host:port of OMEGA_PG_URL.
fn server() -> String {
    let url = common::url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let after_at = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    after_at
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:5432")
        .to_string()
}

/// OMEGA_PG_URL with its host:port replaced by `addr`.
fn url_via(addr: SocketAddr) -> String {
    common::url().replacen(&server(), &addr.to_string(), 1)
}

#[tokio::test]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_holder_cut_off_keeps_nothing_it_cannot_prove_and_reconnects() {
    let schema = Schema::new();
    let target = match server() {
        s if s.contains(':') => s,
        s => format!("{s}:5432"),
    };
    let proxy = Proxy::start(target).await;
    let url = url_via(proxy.addr);
    let holder = PgLockStore::new(
        PgStoreConfig::new(&url)
            .unwrap()
            .schema(&schema.name)
            .lease_ttl(Duration::from_millis(1500))
            .keepalive_every(Duration::from_millis(300))
            .retry_for(Duration::from_millis(500))
            .request_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    let g = holder
        .acquire(LockSpec::new("p", LockMode::Write).owner("holder"))
        .await
        .unwrap()
        .remove(0);
    assert!(g.is_held());
    proxy.cut();
    // Its renewal cannot reach the server: a clear error, saying how long it is still proven.
    let e = g.renew(Duration::from_millis(1500)).await.unwrap_err();
    assert_eq!(e.kind(), "lock-store", "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("lock store: renewing lease #{}: ", g.fence())),
        "{text}"
    );
    assert!(
        text.contains("the lease is proven for") || text.contains("can no longer be proven"),
        "{text}"
    );
    // Another process gets the lock once the lease ran out on the server...
    let other = schema.store();
    let g2 = other
        .acquire(
            LockSpec::new("p", LockMode::Write)
                .owner("other")
                .timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap()
        .remove(0);
    assert!(g2.fence() > g.fence());
    // ...and by then the holder no longer claims it.
    assert!(!g.is_held());
    proxy.restore();
    // Reconnected, it learns the lease is gone, and can queue again like anyone.
    let e = g.renew(Duration::from_millis(1500)).await.unwrap_err();
    assert_eq!(e, LockError::NotHeld { lease: g.lease() });
    let again = tokio::spawn({
        let holder = holder.clone();
        async move {
            holder
                .acquire(
                    LockSpec::new("p", LockMode::Write)
                        .owner("holder")
                        .timeout(Duration::from_secs(10)),
                )
                .await
        }
    });
    drop(g2);
    let g3 = again.await.unwrap().unwrap().remove(0);
    assert!(g3.fence() > g.fence());
    assert!(g3.is_held());
}
