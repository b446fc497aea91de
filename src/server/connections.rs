//! A cap on the connections one listener holds at once. Each connection holds a slot for as long as it is open; while
//! every slot is taken the listener stops accepting, so new connections wait in the kernel's queue (they are not
//! refused) until a connection closes — which the listeners' timeouts make sure happens to any that is idle or slow.
//! Without it, anyone who can reach a listener could hold any number of connections, each a task and a file handle.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;
use tower::Service;

/// Makes each connection's service (`M`, a make-service) only when a slot is free, and gives the slot to it.
pub struct Capped<M> {
    make: M,
    slots: PollSemaphore,
    held: Option<OwnedSemaphorePermit>,
}

impl<M> Capped<M> {
    /// `make` with at most `max` connections open at once.
    pub fn new(make: M, max: usize) -> Capped<M> {
        Capped { make, slots: PollSemaphore::new(Arc::new(Semaphore::new(max))), held: None }
    }
}

impl<M, Target> Service<Target> for Capped<M>
where
    M: Service<Target>,
    M::Future: Send + 'static,
{
    type Response = Slotted<M::Response>;
    type Error = M::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.held.is_none() {
            match self.slots.poll_acquire(cx) {
                Poll::Pending => return Poll::Pending,
                // The semaphore is never closed; were it, connections would go on uncapped rather than stop.
                Poll::Ready(slot) => self.held = slot,
            }
        }
        self.make.poll_ready(cx)
    }

    fn call(&mut self, target: Target) -> Self::Future {
        let slot = Arc::new(self.held.take());
        let made = self.make.call(target);
        Box::pin(async move { Ok(Slotted { service: made.await?, _slot: slot }) })
    }
}

/// A connection's service holding its slot: the slot is free again when the connection (and with it the last clone
/// of its service) is gone.
#[derive(Clone)]
pub struct Slotted<S> {
    service: S,
    _slot: Arc<Option<OwnedSemaphorePermit>>,
}

impl<S, Request> Service<Request> for Slotted<S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.service.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_slot_is_held_while_a_connection_lives_and_freed_when_it_goes() {
        let make = tower::service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(()) });
        let mut capped = Capped::new(make, 2);
        let first = capped.ready().await.expect("ready").call(()).await.expect("first");
        let second = capped.ready().await.expect("ready").call(()).await.expect("second");
        let third = tokio::time::timeout(std::time::Duration::from_millis(100), capped.ready()).await;
        assert!(third.is_err(), "a third connection waits while two are open");
        let kept = second.clone();
        drop(second);
        let still = tokio::time::timeout(std::time::Duration::from_millis(100), capped.ready()).await;
        assert!(still.is_err(), "a clone of the connection's service still holds its slot");
        drop((first, kept));
        capped.ready().await.expect("a slot is free once a connection is gone").call(()).await.expect("third");
    }
}
