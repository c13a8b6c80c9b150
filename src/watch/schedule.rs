//! Tick sources: a fixed interval (tokio's clock) or a cron expression (tokio-cron-scheduler,
//! UTC). Both feed the same channel; the poll loop decides whether a tick starts a cycle or is
//! skipped because the previous cycle still runs.

use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::config::settings::Schedule;

/// A running tick source. Ticks arrive on `rx`; dropping or cancelling stops it.
pub struct Ticks {
    pub rx: mpsc::Receiver<()>,
    /// Kept alive while ticking (cron only).
    scheduler: Option<JobScheduler>,
}

impl Ticks {
    /// Starts ticking. The first interval tick comes at once (a cycle at start-up).
    pub async fn start(schedule: &Schedule, shutdown: CancellationToken) -> anyhow::Result<Self> {
        // Capacity 1: a tick that finds the channel full is a tick the loop has not taken yet,
        // so it carries no extra information.
        let (tx, rx) = mpsc::channel(1);
        match schedule {
            Schedule::Interval(every) => {
                let every = (*every).max(Duration::from_millis(100));
                tokio::spawn(async move {
                    let mut iv = tokio::time::interval(every);
                    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            _ = iv.tick() => {
                                if tx.send(()).await.is_err() { return; }
                            }
                        }
                    }
                });
                Ok(Self {
                    rx,
                    scheduler: None,
                })
            }
            Schedule::Cron(expr) => {
                let sched = JobScheduler::new()
                    .await
                    .context("starting the cron scheduler")?;
                let job = Job::new_async(expr.as_str(), move |_id, _l| {
                    let tx = tx.clone();
                    Box::pin(async move {
                        // A full channel means the loop has a tick pending already.
                        let _ = tx.try_send(());
                    })
                })
                .with_context(|| format!("invalid cron schedule {expr:?}"))?;
                sched.add(job).await.context("adding the cron job")?;
                sched.start().await.context("starting the cron scheduler")?;
                Ok(Self {
                    rx,
                    scheduler: Some(sched),
                })
            }
        }
    }

    /// Stops a cron scheduler (intervals stop with the shutdown token).
    pub async fn stop(&mut self) {
        if let Some(s) = self.scheduler.as_mut() {
            let _ = s.shutdown().await;
        }
    }
}
