//! The server-wide stop signal, and the hyper executor that ties every spawned
//! HTTP/2 stream task to it so nothing outlives the server.

use std::future::Future;

use tokio::sync::watch;

/// Owned by the server; dropping it or calling [`ShutdownTrigger::trigger`] stops all tasks.
#[derive(Debug)]
pub(crate) struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// Cloneable receiver side that resolves once the server is shutting down.
#[derive(Debug, Clone)]
pub(crate) struct ShutdownSignal {
    receiver: watch::Receiver<bool>,
}

/// A new trigger and its signal.
pub(crate) fn shutdown_channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, ShutdownSignal { receiver })
}

impl ShutdownTrigger {
    /// Tells every task holding a [`ShutdownSignal`] to stop.
    pub(crate) fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl ShutdownSignal {
    /// Resolves when shutdown was triggered or the trigger was dropped.
    pub(crate) async fn wait(mut self) {
        // An error means the trigger is gone, which also means "stop".
        let _ = self.receiver.wait_for(|stopping| *stopping).await;
    }

    /// Spawns `task`, cancelling it at shutdown.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let signal = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = signal.wait() => {}
            }
        });
    }
}

/// hyper executor spawning HTTP/2 stream tasks that end at server shutdown.
#[derive(Debug, Clone)]
pub(crate) struct ShutdownAwareExecutor {
    signal: ShutdownSignal,
}

impl ShutdownAwareExecutor {
    pub(crate) fn new(signal: ShutdownSignal) -> Self {
        Self { signal }
    }
}

impl<F> hyper::rt::Executor<F> for ShutdownAwareExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.signal.spawn(future);
    }
}
