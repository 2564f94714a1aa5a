//! The [`QueueView`] behind the server's queue listing, statistics and metrics, built by the
//! scheduler task from the state only it touches.

use crate::executor::{Executor, Job};
use crate::jobs::Running;
use crate::line::Resource;
use crate::task::Task;
use crate::view::{ItemStatus, QueueItem, QueueView};

impl<X: Executor> Task<X> {
    pub(crate) fn view(&mut self) -> QueueView {
        // The device starts dispatched jobs in dispatch order (`device_order`): the first
        // `max_concurrent` run. Lane jobs run once their engine has admitted them.
        let dispatched: Vec<&Running<X>> = self
            .device_order
            .iter()
            .filter_map(|id| self.running.get(id))
            .collect();
        let mut in_lanes: Vec<&Running<X>> = self
            .running
            .values()
            .filter(|r| r.resource == Resource::Lane)
            .collect();
        in_lanes.sort_by_key(|r| r.order);
        let lanes_running = in_lanes.iter().filter(|r| r.start.at().is_some()).count();
        let max_concurrent = self.config.max_concurrent;
        let mut items: Vec<QueueItem> = dispatched
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let on_device = i < max_concurrent;
                QueueItem {
                    position: if on_device {
                        0
                    } else {
                        (i + 1 - max_concurrent) as u64
                    },
                    enqueued_at: r.enqueued_wall,
                    kind: r.kind,
                    status: if on_device {
                        ItemStatus::Running
                    } else {
                        ItemStatus::Starting
                    },
                }
            })
            .collect();
        items.extend(in_lanes.iter().map(|r| QueueItem {
            position: 0,
            enqueued_at: r.enqueued_wall,
            kind: r.kind,
            status: if r.start.at().is_some() {
                ItemStatus::Running
            } else {
                ItemStatus::Starting
            },
        }));
        for resource in Resource::ALL {
            let room = QueueView::MAX_LISTED.saturating_sub(items.len());
            items.extend(self.lines.get(resource).queue.iter().take(room).map(
                |(position, _, w)| QueueItem {
                    position,
                    enqueued_at: w.enqueued_wall,
                    kind: w.job.kind(),
                    status: ItemStatus::Queued,
                },
            ));
        }
        let (p50_wait, p95_wait) = self.stats.wait_percentiles();
        let prefetched = self.prefetched(Resource::Device);
        // The device's places in use, plus the chats decoding in the engine's lanes.
        let running =
            self.running_by[Resource::Device as usize].min(max_concurrent) + lanes_running;
        let mut device = self.device.view();
        let (utilization, window) = self.utilization.utilization(self.device.busy());
        device.utilization = utilization;
        device.utilization_window = window;
        QueueView {
            waiting_by_kind: self.waiting_kinds.iter().map(|(k, n)| (*k, *n)).collect(),
            prefetched: prefetched as u64,
            waiting: (self.lines.len() + prefetched) as u64,
            running: running as u64,
            max_concurrent: max_concurrent as u64,
            max_waiting: self.config.max_waiting as u64,
            parties_waiting: self.party_caps.parties() as u64,
            items,
            total_finished: self.stats.total_finished,
            max_wait: self.stats.max_wait,
            p50_wait,
            p95_wait,
            avg_run: self.stats.avg_run,
            cancelled: self.stats.cancelled,
            rejected: self.stats.rejected.iter().map(|(k, v)| (*k, *v)).collect(),
            order: self.config.order,
            performance: self.stats.performance(),
            history: self.stats.history(),
            device,
        }
    }
}
