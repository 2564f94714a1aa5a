//! The model manager (seed 002, done properly): one per configured model, holding at most one
//! copy of its weights. The first request (or the preload flag) starts a load in the background;
//! requests that arrive meanwhile wait for that same load, in order, and can watch its progress. A
//! load that fails or passes its timeout fails every waiter with `model_unavailable` and leaves the
//! model unloaded, so the next request tries again. A load every waiter has abandoned is cancelled,
//! unless the preload flag started it. A loaded model stays warm for a keep-alive after its last
//! use, then is dropped (its memory is freed once the last lease ends).
//!
//! Concurrency: the state sits behind a small mutex that is never held across an `.await`; the
//! load itself runs on a blocking thread and reports back by locking the state once. Waiters
//! sleep on a `watch` channel, not on the lock.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Loads one model. Blocking; runs on a blocking thread.
pub trait Loader: Send + Sync + 'static {
    /// The loaded model.
    type Model: Send + Sync + 'static;
    /// Loads the model, calling `progress` with a fraction in [0, 1] where it can, and giving up
    /// early (with any error) once `cancel` fires. The error text is shown to users: say what is
    /// wrong ("the model file is missing"), not internals.
    fn load(
        &self,
        progress: &dyn Fn(f32),
        cancel: &CancellationToken,
    ) -> Result<Self::Model, String>;
}

/// Why a model could not be had.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The load failed, timed out or was cancelled; the text says why.
    #[error("the model is unavailable: {0}")]
    Unavailable(String),
}

/// What a waiter sees of a load in progress.
#[derive(Debug)]
pub enum LoadProgress<M> {
    /// Loading; the fraction done when the loader can tell.
    Loading(Option<f32>),
    /// Loaded.
    Ready(Arc<M>),
    /// Failed; every waiter gets this.
    Failed(ModelError),
}

// Not derived: the derive would demand `M: Clone`, but only the `Arc` is cloned.
impl<M> Clone for LoadProgress<M> {
    fn clone(&self) -> Self {
        match self {
            LoadProgress::Loading(p) => LoadProgress::Loading(*p),
            LoadProgress::Ready(m) => LoadProgress::Ready(Arc::clone(m)),
            LoadProgress::Failed(e) => LoadProgress::Failed(e.clone()),
        }
    }
}

/// The manager's settings.
#[derive(Clone, Copy, Debug)]
pub struct ManagerConfig {
    /// How long a loaded model stays after its last use.
    pub keep_alive: Duration,
    /// Longest a load may take.
    pub load_timeout: Duration,
}

/// A snapshot for `/health` and `/api/stats`.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagerStatus {
    /// `unloaded`, `loading` or `loaded`.
    pub state: &'static str,
    /// How long the last successful load took.
    pub last_load_time: Option<Duration>,
    /// Time since the model was last used (while loaded).
    pub idle_for: Option<Duration>,
    /// Requests waiting for a load.
    pub waiting: usize,
    /// Loads started since start.
    pub loads: u64,
    /// Loads that failed, timed out or were cancelled.
    pub load_failures: u64,
    /// Why the last load failed, if it did.
    pub last_error: Option<String>,
}

enum Slot<M> {
    Unloaded,
    Loading {
        /// Progress and outcome, for the waiters.
        progress: watch::Receiver<LoadProgress<M>>,
        /// Requests waiting on this load.
        waiters: usize,
        /// Started by the preload flag: never cancelled for lack of waiters.
        preload: bool,
        /// Stops the load.
        cancel: CancellationToken,
    },
    Loaded {
        model: Arc<M>,
        last_used: Instant,
    },
}

struct State<M> {
    slot: Slot<M>,
    /// Bumped by every load, so a stale load's report is ignored.
    generation: u64,
    loads: u64,
    load_failures: u64,
    last_load_time: Option<Duration>,
    last_error: Option<String>,
}

/// One model's manager. Share it in an `Arc`.
pub struct ModelManager<L: Loader> {
    loader: Arc<L>,
    config: ManagerConfig,
    state: Mutex<State<L::Model>>,
}

/// A request's use of the loaded model; ending it marks the model as just used.
pub struct ModelLease<L: Loader> {
    model: Arc<L::Model>,
    manager: Arc<ModelManager<L>>,
}

impl<L: Loader> ModelLease<L> {
    /// The leased model itself (its identity tells one load from the next).
    pub fn model(&self) -> &Arc<L::Model> {
        &self.model
    }
}

impl<L: Loader> std::ops::Deref for ModelLease<L> {
    type Target = L::Model;
    fn deref(&self) -> &L::Model {
        &self.model
    }
}

impl<L: Loader> Drop for ModelLease<L> {
    fn drop(&mut self) {
        if let Slot::Loaded { model, last_used } = &mut self.manager.state.lock().slot {
            if Arc::ptr_eq(model, &self.model) {
                *last_used = Instant::now();
            }
        }
    }
}

/// Counts a waiter out when its request ends or is abandoned; the last one out cancels the load.
struct Waiter<L: Loader> {
    manager: Arc<ModelManager<L>>,
    generation: u64,
}

impl<L: Loader> Drop for Waiter<L> {
    fn drop(&mut self) {
        let mut s = self.manager.state.lock();
        if s.generation != self.generation {
            return;
        }
        if let Slot::Loading {
            waiters,
            preload,
            cancel,
            ..
        } = &mut s.slot
        {
            *waiters -= 1;
            if *waiters == 0 && !*preload {
                tracing::info!("every request waiting for the model left; cancelling its load");
                cancel.cancel();
            }
        }
    }
}

impl<L: Loader> ModelManager<L> {
    /// A manager with nothing loaded.
    pub fn new(loader: L, config: ManagerConfig) -> Arc<Self> {
        Arc::new(ModelManager {
            loader: Arc::new(loader),
            config,
            state: Mutex::new(State {
                slot: Slot::Unloaded,
                generation: 0,
                loads: 0,
                load_failures: 0,
                last_load_time: None,
                last_error: None,
            }),
        })
    }

    /// Starts loading now (the preload flag); such a load is not cancelled when nobody waits.
    pub fn preload(self: &Arc<Self>) {
        let mut s = self.state.lock();
        match &mut s.slot {
            Slot::Unloaded => {
                self.start_load(&mut s, true);
            }
            Slot::Loading { preload, .. } => *preload = true,
            Slot::Loaded { .. } => {}
        }
    }

    /// The loaded model, loading it first if needed. `on_progress` hears about a load this
    /// request waits for (so it can tell its owner "loading model"). Dropping the future
    /// abandons the wait.
    pub async fn acquire(
        self: &Arc<Self>,
        mut on_progress: impl FnMut(Option<f32>),
    ) -> Result<ModelLease<L>, ModelError> {
        let (mut progress, generation) = {
            let mut s = self.state.lock();
            // A load already cancelled for lack of waiters is not joined: start afresh.
            if matches!(&s.slot, Slot::Loading { cancel, .. } if cancel.is_cancelled()) {
                s.slot = Slot::Unloaded;
            }
            let generation = s.generation;
            match &mut s.slot {
                Slot::Loaded { model, last_used } => {
                    *last_used = Instant::now();
                    return Ok(ModelLease {
                        model: Arc::clone(model),
                        manager: Arc::clone(self),
                    });
                }
                Slot::Loading {
                    progress, waiters, ..
                } => {
                    *waiters += 1;
                    (progress.clone(), generation)
                }
                Slot::Unloaded => {
                    let rx = self.start_load(&mut s, false);
                    (rx, s.generation)
                }
            }
        };
        let _waiter = Waiter {
            manager: Arc::clone(self),
            generation,
        };
        loop {
            let current = progress.borrow_and_update().clone();
            match current {
                LoadProgress::Ready(model) => {
                    return Ok(ModelLease {
                        model,
                        manager: Arc::clone(self),
                    })
                }
                LoadProgress::Failed(e) => return Err(e),
                LoadProgress::Loading(p) => on_progress(p),
            }
            if progress.changed().await.is_err() {
                return Err(ModelError::Unavailable("the load was abandoned".into()));
            }
        }
    }

    /// Begins a load (state must be `Unloaded`); returns the progress receiver.
    fn start_load(
        self: &Arc<Self>,
        s: &mut State<L::Model>,
        preload: bool,
    ) -> watch::Receiver<LoadProgress<L::Model>> {
        s.generation += 1;
        s.loads += 1;
        let generation = s.generation;
        let (tx, rx) = watch::channel(LoadProgress::Loading(None));
        let cancel = CancellationToken::new();
        s.slot = Slot::Loading {
            progress: rx.clone(),
            waiters: usize::from(!preload),
            preload,
            cancel: cancel.clone(),
        };
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            let started = Instant::now();
            let loader = Arc::clone(&manager.loader);
            let tx = Arc::new(tx);
            let progress_tx = Arc::clone(&tx);
            let token = cancel.clone();
            let load = tokio::task::spawn_blocking(move || {
                let progress = |f: f32| {
                    let _ = progress_tx.send(LoadProgress::Loading(Some(f.clamp(0.0, 1.0))));
                };
                loader.load(&progress, &token)
            });
            let outcome = tokio::select! {
                r = tokio::time::timeout(manager.config.load_timeout, load) => match r {
                    Ok(Ok(Ok(model))) => Ok(Arc::new(model)),
                    Ok(Ok(Err(why))) => Err(why),
                    Ok(Err(_panic)) => Err("the loader crashed".to_owned()),
                    Err(_) => Err(format!("loading took longer than {}", humantime::format_duration(manager.config.load_timeout))),
                },
                _ = cancel.cancelled() => Err("the load was cancelled".to_owned()),
            };
            cancel.cancel(); // stops a loader still running after a timeout
            manager.finish_load(generation, outcome, started.elapsed(), &tx);
        });
        rx
    }

    fn finish_load(
        &self,
        generation: u64,
        outcome: Result<Arc<L::Model>, String>,
        took: Duration,
        tx: &watch::Sender<LoadProgress<L::Model>>,
    ) {
        let mut s = self.state.lock();
        if s.generation != generation {
            return;
        }
        match outcome {
            Ok(model) => {
                tracing::info!(load_ms = took.as_millis() as u64, "model loaded");
                s.last_load_time = Some(took);
                s.last_error = None;
                s.slot = Slot::Loaded {
                    model: Arc::clone(&model),
                    last_used: Instant::now(),
                };
                let _ = tx.send(LoadProgress::Ready(model));
            }
            Err(why) => {
                tracing::warn!(reason = %why, "model load failed");
                s.load_failures += 1;
                s.last_error = Some(why.clone());
                s.slot = Slot::Unloaded;
                let _ = tx.send(LoadProgress::Failed(ModelError::Unavailable(why)));
            }
        }
    }

    /// Drops the model if nobody holds it and it has been idle for the keep-alive. Returns
    /// whether it unloaded. Called periodically by its owner.
    pub fn unload_if_idle(&self, now: Instant) -> bool {
        let mut s = self.state.lock();
        if let Slot::Loaded { model, last_used } = &s.slot {
            if Arc::strong_count(model) == 1
                && now.saturating_duration_since(*last_used) >= self.config.keep_alive
            {
                s.slot = Slot::Unloaded;
                tracing::info!("model unloaded after its keep-alive");
                return true;
            }
        }
        false
    }

    /// The loaded model, if any, without counting as a use (for stats).
    pub fn loaded(&self) -> Option<Arc<L::Model>> {
        match &self.state.lock().slot {
            Slot::Loaded { model, .. } => Some(Arc::clone(model)),
            _ => None,
        }
    }

    /// The manager's state.
    pub fn status(&self) -> ManagerStatus {
        let s = self.state.lock();
        let (state, idle_for, waiting) = match &s.slot {
            Slot::Unloaded => ("unloaded", None, 0),
            Slot::Loading { waiters, .. } => ("loading", None, *waiters),
            Slot::Loaded { last_used, .. } => ("loaded", Some(last_used.elapsed()), 0),
        };
        ManagerStatus {
            state,
            last_load_time: s.last_load_time,
            idle_for,
            waiting,
            loads: s.loads,
            load_failures: s.load_failures,
            last_error: s.last_error.clone(),
        }
    }
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
