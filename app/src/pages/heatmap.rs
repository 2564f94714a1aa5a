//! The heatmap of a 2-D result: an inline SVG of one rect per cell, coloured on a
//! perceptually ordered scale (dark blue → teal → yellow) from the finite minimum to the maximum.
//! Matrices larger than [`MAX_CELLS`] a side are shown as block averages; cells holding a
//! non-finite value are drawn in [`NON_FINITE_COLOUR`], which is not on the scale.

use crate::pages::format;
use leptos::prelude::*;

/// Most cells drawn along either side.
pub const MAX_CELLS: usize = 64;

/// Colour of cells with a NaN or infinite value (a block with any of them, when downsampled).
pub const NON_FINITE_COLOUR: &str = "#e0245e";

/// Stops of the colour scale, low to high (viridis-like).
const STOPS: [(u8, u8, u8); 5] = [
    (68, 1, 84),
    (59, 82, 139),
    (33, 145, 140),
    (94, 201, 98),
    (253, 231, 37),
];

/// A matrix reduced to at most [`MAX_CELLS`]² cells; `None` marks a non-finite cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Rows drawn.
    pub rows: usize,
    /// Columns drawn.
    pub cols: usize,
    /// Row-major cells.
    pub cells: Vec<Option<f32>>,
    /// Smallest finite cell (0 when there is none).
    pub min: f32,
    /// Largest finite cell (0 when there is none).
    pub max: f32,
    /// Whether cells stand for blocks of the original.
    pub downsampled: bool,
}

impl Grid {
    /// The grid of a `rows` × `cols` row-major matrix.
    pub fn new(data: &[f32], rows: usize, cols: usize) -> Grid {
        let out_rows = rows.min(MAX_CELLS);
        let out_cols = cols.min(MAX_CELLS);
        let mut cells = Vec::with_capacity(out_rows * out_cols);
        for r in 0..out_rows {
            let (r0, r1) = block(r, rows, out_rows);
            for c in 0..out_cols {
                let (c0, c1) = block(c, cols, out_cols);
                cells.push(block_mean(data, cols, r0..r1, c0..c1));
            }
        }
        let finite = cells.iter().flatten().copied();
        let (min, max) = finite
            .fold(None, |acc: Option<(f32, f32)>, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })
            .unwrap_or((0.0, 0.0));
        Grid {
            rows: out_rows,
            cols: out_cols,
            cells,
            min,
            max,
            downsampled: out_rows < rows || out_cols < cols,
        }
    }

    /// Whether any cell is non-finite.
    pub fn has_non_finite(&self) -> bool {
        self.cells.iter().any(Option::is_none)
    }

    /// The fill colour of a cell.
    pub fn colour(&self, cell: Option<f32>) -> String {
        match cell {
            None => NON_FINITE_COLOUR.into(),
            Some(v) if self.max > self.min => colour_at((v - self.min) / (self.max - self.min)),
            Some(_) => colour_at(0.5),
        }
    }
}

/// The half-open range of source indices that output index `i` of `out` covers out of `len`.
fn block(i: usize, len: usize, out: usize) -> (usize, usize) {
    let start = i * len / out;
    let end = ((i + 1) * len / out).max(start + 1);
    (start, end)
}

/// Mean of a block; `None` if any value in it is non-finite.
fn block_mean(
    data: &[f32],
    cols: usize,
    rows: std::ops::Range<usize>,
    cs: std::ops::Range<usize>,
) -> Option<f32> {
    let mut sum = 0f64;
    let mut n = 0usize;
    for r in rows {
        for &v in &data[r * cols + cs.start..r * cols + cs.end] {
            if !v.is_finite() {
                return None;
            }
            sum += f64::from(v);
            n += 1;
        }
    }
    Some((sum / n.max(1) as f64) as f32)
}

/// The scale's colour at `t` in [0, 1], as `#rrggbb`.
pub fn colour_at(t: f32) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: u8, q: u8| (f32::from(p) + (f32::from(q) - f32::from(p)) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// The CSS gradient of the whole scale, for the legend.
fn legend_gradient() -> String {
    let stops: Vec<String> = (0..STOPS.len())
        .map(|i| colour_at(i as f32 / (STOPS.len() - 1) as f32))
        .collect();
    format!(
        "background: linear-gradient(to right, {})",
        stops.join(", ")
    )
}

/// The heatmap of a `rows` × `cols` matrix with a legend.
#[component]
pub fn Heatmap(
    /// The matrix, reduced.
    grid: Grid,
    /// Rows of the original matrix.
    rows: usize,
    /// Columns of the original matrix.
    cols: usize,
) -> impl IntoView {
    let rects = (0..grid.rows)
        .flat_map(|r| (0..grid.cols).map(move |c| (r, c)))
        .map(|(r, c)| {
            let fill = grid.colour(grid.cells[r * grid.cols + c]);
            view! { <rect x=c.to_string() y=r.to_string() width="1" height="1" fill=fill></rect> }
        })
        .collect_view();
    let label = format!(
        "Heatmap of the {rows} × {cols} result{}, from {} (dark) to {} (bright)",
        if grid.downsampled {
            format!(", averaged to {} × {} cells", grid.rows, grid.cols)
        } else {
            String::new()
        },
        format::value(grid.min),
        format::value(grid.max),
    );
    let max_width = format!("max-width: {}px", (grid.cols * 48).clamp(96, 512));
    let non_finite = grid.has_non_finite().then(|| {
        view! {
            <span class="legend-item">
                <span class="swatch" style=format!("background: {NON_FINITE_COLOUR}")></span>
                "NaN / ∞"
            </span>
        }
    });
    view! {
        <figure class="heatmap">
            <svg
                data-testid="heatmap"
                role="img"
                aria-label=label
                viewBox=format!("0 0 {} {}", grid.cols, grid.rows)
                shape-rendering="crispEdges"
                style=max_width
            >
                {rects}
            </svg>
            <figcaption class="legend">
                <span class="legend-item">{format::value(grid.min)}</span>
                <span class="scale" style=legend_gradient() aria-hidden="true"></span>
                <span class="legend-item">{format::value(grid.max)}</span>
                {non_finite}
                {grid.downsampled.then(|| view! { <span class="hint">"(block averages)"</span> })}
            </figcaption>
        </figure>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_matrices_keep_every_cell() {
        let g = Grid::new(&[1., 2., 3., 4.], 2, 2);
        assert_eq!(
            (g.rows, g.cols, g.min, g.max, g.downsampled),
            (2, 2, 1., 4., false)
        );
        assert_eq!(g.cells, vec![Some(1.), Some(2.), Some(3.), Some(4.)]);
        assert_eq!(g.colour(Some(1.)), colour_at(0.0));
        assert_eq!(g.colour(Some(4.)), colour_at(1.0));
    }

    #[test]
    fn large_matrices_are_averaged_to_at_most_64_a_side() {
        let (rows, cols) = (200, 130);
        let data: Vec<f32> = (0..rows * cols).map(|i| (i % cols) as f32).collect();
        let g = Grid::new(&data, rows, cols);
        assert_eq!((g.rows, g.cols, g.downsampled), (64, 64, true));
        assert_eq!(g.cells.len(), 64 * 64);
        assert!(g.min >= 0.0 && g.max <= 129.0 && g.min < g.max);
    }

    #[test]
    fn non_finite_cells_stand_out_and_do_not_stretch_the_scale() {
        let g = Grid::new(&[f32::NAN, 1., f32::INFINITY, 3.], 2, 2);
        assert_eq!((g.min, g.max), (1., 3.));
        assert!(g.has_non_finite());
        assert_eq!(g.colour(None), NON_FINITE_COLOUR);
        let flat = Grid::new(&[2., 2.], 1, 2);
        assert_eq!(flat.colour(Some(2.)), colour_at(0.5));
    }

    #[test]
    fn the_scale_runs_from_dark_to_bright() {
        assert_eq!(colour_at(0.0), "#440154");
        assert_eq!(colour_at(1.0), "#fde725");
        assert_eq!(colour_at(f32::NAN), "#440154");
    }
}
