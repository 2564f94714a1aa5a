//! The stats page's chart of the last minutes: one bar per history point for the queue length and
//! a line for the average wait, each on its own scale, in an inline SVG. Layout is computed by
//! pure functions ([`bars`], [`wait_line`]) so it is tested without a browser.

use crate::api::HistoryPoint;
use crate::pages::format;
use leptos::prelude::*;

/// Width of the drawing in SVG units.
const WIDTH: f64 = 600.0;
/// Height of the drawing in SVG units.
const HEIGHT: f64 = 160.0;
/// Headroom above the tallest bar and the highest point of the line.
const TOP: f64 = 8.0;

/// One bar: `(x, y, width, height)` in SVG units.
pub type Bar = (f64, f64, f64, f64);

/// The largest queue length, at least 1 so an idle server still has a scale.
pub fn max_queue(points: &[HistoryPoint]) -> u64 {
    points
        .iter()
        .map(|p| p.queue_length)
        .max()
        .unwrap_or(0)
        .max(1)
}

/// The largest average wait in seconds (0 when nobody waited).
pub fn max_wait(points: &[HistoryPoint]) -> f64 {
    points
        .iter()
        .map(|p| p.avg_wait)
        .filter(|w| w.is_finite())
        .fold(0.0, f64::max)
}

/// The queue-length bars, one slot per point, oldest on the left.
pub fn bars(points: &[HistoryPoint]) -> Vec<Bar> {
    let slot = WIDTH / points.len().max(1) as f64;
    let scale = (HEIGHT - TOP) / max_queue(points) as f64;
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.queue_length > 0)
        .map(|(i, p)| {
            let h = p.queue_length as f64 * scale;
            (i as f64 * slot, HEIGHT - h, (slot * 0.8).max(0.5), h)
        })
        .collect()
}

/// The `points` attribute of the average-wait polyline (empty when nobody waited).
pub fn wait_line(points: &[HistoryPoint]) -> String {
    let top = max_wait(points);
    if top <= 0.0 {
        return String::new();
    }
    let slot = WIDTH / points.len().max(1) as f64;
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let w = if p.avg_wait.is_finite() {
                p.avg_wait.max(0.0)
            } else {
                0.0
            };
            let x = i as f64 * slot + slot * 0.4;
            let y = HEIGHT - w / top * (HEIGHT - TOP);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chart over `history` (oldest first), `step` seconds apart.
#[component]
pub fn HistoryChart(
    /// The points, oldest first; empty before the first fetch.
    #[prop(into)]
    history: Signal<Vec<HistoryPoint>>,
    /// Seconds between points.
    #[prop(into)]
    step: Signal<u64>,
) -> impl IntoView {
    let summary = move || {
        history.with(|h| {
            if h.is_empty() {
                return "No history yet.".to_string();
            }
            format!(
                "Last {} s: queue length up to {}, average wait up to {}.",
                h.len() as u64 * step.get().max(1),
                max_queue(h),
                format::seconds_as_millis(max_wait(h))
            )
        })
    };
    let drawing = move || {
        history.with(|h| {
            let rects = bars(h)
                .into_iter()
                .map(|(x, y, w, ht)| {
                    view! {
                        <rect
                            class="bar"
                            x=format!("{x:.1}")
                            y=format!("{y:.1}")
                            width=format!("{w:.1}")
                            height=format!("{ht:.1}")
                        ></rect>
                    }
                })
                .collect_view();
            view! {
                <g>
                    <line class="gridline" x1="0" y1=TOP.to_string() x2=WIDTH.to_string() y2=TOP.to_string() vector-effect="non-scaling-stroke"></line>
                    {rects}
                    <polyline class="wait-line" points=wait_line(h) vector-effect="non-scaling-stroke"></polyline>
                    <line class="axis" x1="0" y1=HEIGHT.to_string() x2=WIDTH.to_string() y2=HEIGHT.to_string() vector-effect="non-scaling-stroke"></line>
                </g>
            }
        })
    };
    let scale = move |f: fn(&[HistoryPoint]) -> String| {
        move || {
            history.with(|h| {
                if h.is_empty() {
                    format::NO_DATA.to_string()
                } else {
                    format!("max {}", f(h))
                }
            })
        }
    };
    let queue_scale = scale(|h| max_queue(h).to_string());
    let wait_scale = scale(|h| format::seconds_as_millis(max_wait(h)));
    view! {
        <figure class="chart">
            <div class="chart-scales" aria-hidden="true">
                <span class="scale-queue">"Queue " {queue_scale}</span>
                <span class="scale-wait">"Wait " {wait_scale}</span>
            </div>
            <svg
                data-testid="stats-chart"
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                preserveAspectRatio="none"
                role="img"
                aria-label=summary
            >
                {drawing}
            </svg>
            <figcaption class="legend">
                <span class="legend-item"><span class="swatch swatch-queue"></span>"Queue length"</span>
                <span class="legend-item"><span class="swatch swatch-wait"></span>"Average wait"</span>
                <span class="hint">{summary}</span>
            </figcaption>
        </figure>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(queue_length: u64, avg_wait: f64) -> HistoryPoint {
        HistoryPoint {
            t: 0,
            queue_length,
            avg_wait,
            finished: 0,
        }
    }

    #[test]
    fn bars_scale_to_the_longest_queue() {
        let h = [p(0, 0.0), p(2, 0.0), p(4, 0.0)];
        let b = bars(&h);
        assert_eq!(b.len(), 2, "empty slots draw no bar");
        assert_eq!(b[1].3, HEIGHT - TOP);
        assert_eq!(b[0].3, (HEIGHT - TOP) / 2.0);
        assert_eq!(b[1].0, 2.0 * WIDTH / 3.0);
        assert!(bars(&[]).is_empty());
    }

    #[test]
    fn wait_line_peaks_at_the_top() {
        assert_eq!(wait_line(&[p(0, 0.0)]), "");
        let line = wait_line(&[p(0, 0.0), p(0, 0.5)]);
        let ys: Vec<f64> = line
            .split(' ')
            .map(|xy| xy.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert_eq!(ys, vec![HEIGHT, TOP]);
    }
}
