//! How a finished job is shown: the timings, the output's shape, and the output itself as a table
//! when it is small (a scalar, a short vector, a matrix up to [`TABLE_MAX_SIDE`] a side), a
//! heatmap for every matrix, and for anything else the first values.

use crate::pages::format;
use crate::pages::heatmap::{Grid, Heatmap};
use crate::pages::job::Finished;
use crate::tensor::Tensor;
use leptos::prelude::*;
use std::sync::Arc;

/// Largest matrix side shown as a table.
pub const TABLE_MAX_SIDE: usize = 16;

/// Longest vector shown as a table.
pub const TABLE_MAX_VECTOR: usize = 64;

/// How many values the preview of a large tensor lists.
pub const PREVIEW_VALUES: usize = 32;

/// The rows of the table for `t`, if it is small enough for one.
pub fn table_rows(t: &Tensor) -> Option<Vec<&[f32]>> {
    match t.shape.as_slice() {
        [] => Some(vec![&t.data[..]]),
        [n] if *n <= TABLE_MAX_VECTOR => Some(vec![&t.data[..]]),
        [r, c] if *r <= TABLE_MAX_SIDE && *c <= TABLE_MAX_SIDE && *c > 0 => {
            Some(t.data.chunks(*c).collect())
        }
        _ => None,
    }
}

/// The result area of a finished job.
#[component]
pub fn ResultView(
    /// The finished job.
    finished: Arc<Finished>,
) -> impl IntoView {
    let t = &finished.output;
    let summary = format!(
        "{} · {} values",
        format::shape(&t.shape),
        format::count(t.data.len() as u64)
    );
    let table = table_rows(t).map(|rows| result_table(&rows, t.shape.len()));
    let preview = table.is_none().then(|| preview(t));
    let heatmap = match t.shape.as_slice() {
        [r, c] if *r > 0 && *c > 0 => {
            Some(view! { <Heatmap grid=Grid::new(&t.data, *r, *c) rows=*r cols=*c/> })
        }
        _ => None,
    };
    view! {
        <section class="card result" data-testid="result" aria-labelledby="result-title">
            <h2 id="result-title">"Result"</h2>
            <dl class="timings">
                <div>
                    <dt>"Waited"</dt>
                    <dd data-testid="waited">{format::millis(finished.waited_ms as f64)}</dd>
                </div>
                <div>
                    <dt>"Computed in"</dt>
                    <dd data-testid="compute">{format::millis(finished.compute_ms)}</dd>
                </div>
                <div>
                    <dt>"Shape"</dt>
                    <dd data-testid="shape">{summary}</dd>
                </div>
            </dl>
            {preview}
            <div class="result-body">{table} {heatmap}</div>
        </section>
    }
    .into_any()
}

/// A table with one `td.cell` per value; `rank` says whether to number rows and columns.
fn result_table(rows: &[&[f32]], rank: usize) -> impl IntoView {
    let cols = rows.first().map_or(0, |r| r.len());
    let header = (rank == 2).then(|| {
        view! {
            <thead>
                <tr>
                    <th scope="col"><span class="visually-hidden">"row"</span></th>
                    {(0..cols).map(|c| view! { <th scope="col">{c}</th> }).collect_view()}
                </tr>
            </thead>
        }
    });
    let body = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let label = (rank == 2).then(|| view! { <th scope="row">{r}</th> });
            let cells = row
                .iter()
                .map(|&v| {
                    let class = if v.is_finite() {
                        "cell"
                    } else {
                        "cell non-finite"
                    };
                    view! { <td class=class>{format::value(v)}</td> }
                })
                .collect_view();
            view! { <tr>{label} {cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="table-scroll" tabindex="0" role="region" aria-label="Result values">
            <table class="tensor">
                {header}
                <tbody>{body}</tbody>
            </table>
        </div>
    }
}

/// The first values of a tensor too large for a table.
fn preview(t: &Tensor) -> impl IntoView {
    let shown = t.data.len().min(PREVIEW_VALUES);
    let values = t.data[..shown]
        .iter()
        .map(|&v| format::value(v))
        .collect::<Vec<_>>()
        .join(", ");
    let more = t.data.len() - shown;
    view! {
        <p class="preview">
            <span class="hint">{format!("First {shown} values (row-major): ")}</span>
            <code data-testid="preview">{values} {(more > 0).then(|| format!(" … and {} more", format::count(more as u64)))}</code>
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: Vec<usize>) -> Tensor {
        let n = crate::tensor::element_count(&shape);
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }

    #[test]
    fn small_tensors_get_a_table() {
        assert_eq!(table_rows(&t(vec![])).map(|r| r.len()), Some(1));
        assert_eq!(table_rows(&t(vec![5])).map(|r| r.len()), Some(1));
        let matrix = t(vec![3, 16]);
        let rows = table_rows(&matrix).unwrap();
        assert_eq!((rows.len(), rows[0].len()), (3, 16));
    }

    #[test]
    fn large_or_high_rank_tensors_do_not() {
        assert!(table_rows(&t(vec![17, 2])).is_none());
        assert!(table_rows(&t(vec![2, 17])).is_none());
        assert!(table_rows(&t(vec![65])).is_none());
        assert!(table_rows(&t(vec![2, 2, 2])).is_none());
    }
}
