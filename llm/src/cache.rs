//! The key/value cache of one sequence, preallocated for a fixed number of tokens and extended in
//! place by each forward step.
//!
//! Two storages, matching the model's execution path: host memory (`[layer][kv_head][position]
//! [head_dim]` f32, so attention over one head scans contiguous memory) for the native CPU path,
//! and one preallocated device tensor per layer for K and for V (`(1, kv_heads, capacity,
//! head_dim)`, written with `slice_set`) for the tensor path. Memory is released when the cache
//! is dropped.
//!
//! Concurrency: a cache belongs to one sequence; a forward borrows it `&mut` (only the step that
//! extends it may touch it), so no locking is needed.

use candle_core::Tensor;

/// A sequence's K/V cache: `len()` tokens written out of `capacity()`.
pub struct SeqCache {
    /// Tokens written so far (the next token's position).
    pub(crate) len: usize,
    /// Tokens the storage holds at most.
    pub(crate) capacity: usize,
    /// Where the keys and values live.
    pub(crate) store: Store,
}

/// The storage of a [`SeqCache`].
pub(crate) enum Store {
    /// Host memory for the native CPU path.
    Host(HostKv),
    /// Device tensors for the tensor path.
    Device(DeviceKv),
}

/// Host K/V: two f32 buffers laid out `[layer][kv_head][capacity][head_dim]`.
pub(crate) struct HostKv {
    /// Layers (checked against the model at each step).
    pub(crate) layers: usize,
    /// Key/value heads per layer.
    pub(crate) kv_heads: usize,
    /// Values per head.
    pub(crate) head_dim: usize,
    /// Keys (after RoPE).
    pub(crate) k: Vec<f32>,
    /// Values.
    pub(crate) v: Vec<f32>,
}

/// Device K/V: per layer, `(1, kv_heads, capacity, head_dim)` tensors for K and V.
pub(crate) struct DeviceKv {
    /// Keys per layer.
    pub(crate) k: Vec<Tensor>,
    /// Values per layer.
    pub(crate) v: Vec<Tensor>,
}

impl HostKv {
    /// Zeroed storage (the allocator hands out untouched pages lazily).
    pub(crate) fn new(layers: usize, kv_heads: usize, head_dim: usize, capacity: usize) -> Self {
        let n = layers * kv_heads * capacity * head_dim;
        Self {
            layers,
            kv_heads,
            head_dim,
            k: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// Offset of `(layer, kv_head, pos)` in `k`/`v`.
    #[inline]
    pub(crate) fn offset(&self, capacity: usize, layer: usize, head: usize, pos: usize) -> usize {
        ((layer * self.kv_heads + head) * capacity + pos) * self.head_dim
    }
}

impl SeqCache {
    /// Tokens cached (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token has been cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tokens this cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Tokens that still fit.
    pub fn remaining(&self) -> usize {
        self.capacity - self.len
    }

    /// Bytes of K/V storage held (allocated for the full capacity).
    pub fn bytes(&self) -> usize {
        match &self.store {
            Store::Host(h) => (h.k.len() + h.v.len()) * std::mem::size_of::<f32>(),
            Store::Device(d) => {
                d.k.iter()
                    .chain(&d.v)
                    .map(|t| t.elem_count() * t.dtype().size_in_bytes())
                    .sum()
            }
        }
    }

    /// Forgets the tokens after the first `len` (e.g. to regenerate an answer); a no-op when
    /// `len >= self.len()`. The storage is kept.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Forgets every token; the storage is kept for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl std::fmt::Debug for SeqCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.store {
            Store::Host(_) => "host",
            Store::Device(_) => "device",
        };
        write!(f, "SeqCache({kind}, {}/{} tokens)", self.len, self.capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(capacity: usize) -> SeqCache {
        SeqCache {
            len: 0,
            capacity,
            store: Store::Host(HostKv::new(2, 3, 4, capacity)),
        }
    }

    #[test]
    fn sizes_and_truncation() {
        let mut c = host(10);
        assert_eq!((c.len(), c.capacity(), c.remaining()), (0, 10, 10));
        assert_eq!(c.bytes(), 2 * 2 * 3 * 4 * 10 * 4);
        assert!(c.is_empty());
        c.len = 7;
        c.truncate(9);
        assert_eq!(c.len(), 7);
        c.truncate(3);
        assert_eq!((c.len(), c.remaining()), (3, 7));
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn offsets_are_disjoint_per_layer_head_position() {
        let c = HostKv::new(2, 3, 4, 5);
        let mut seen = std::collections::HashSet::new();
        for l in 0..2 {
            for h in 0..3 {
                for p in 0..5 {
                    let o = c.offset(5, l, h, p);
                    assert!(o + 4 <= c.k.len());
                    assert!(seen.insert(o));
                }
            }
        }
    }
}
