//! Operations and settings: what a case does and runs on, and the strategies that generate them.

use super::script::Kind;
use super::OWNERS;
use crate::QueueOrder;
use proptest::prelude::*;

#[derive(Clone, Debug)]
pub(super) enum Op {
    /// Let this many milliseconds pass.
    Wait(u64),
    /// A job for `owner` (reconnecting it if it was disconnected); `cost_ms` is its expected
    /// device time, as the fair order sees it.
    Submit {
        owner: usize,
        kind: Kind,
        cost_ms: u64,
    },
    /// Finish the `n`th job on the device (in dispatch order, modulo their number).
    Finish(usize),
    /// Cancel the `n`th job whose ticket is still held (in submission order, modulo their
    /// number), whatever state it is in.
    Cancel(usize),
    /// Drop an owner's receiver and tickets.
    Disconnect(usize),
    /// Make the `n`th job on the device panic.
    Panic(usize),
    /// Every job on the device runs past `max_run`.
    Stall,
    /// Held jobs for these (owner, cost) submitted back to back, with no pause between them.
    Burst(Vec<(usize, u64)>),
}

#[derive(Clone, Debug)]
pub(super) struct Setup {
    pub(super) order: QueueOrder,
    pub(super) max_waiting: usize,
    pub(super) max_waiting_per_party: usize,
    pub(super) weights: Vec<u32>,
}

/// What a property runs on.
pub(super) struct Variant {
    pub(super) max_concurrent: usize,
    /// Jobs handed to the device ahead of their turn.
    pub(super) prefetch: usize,
    /// A multi-thread runtime (2 workers) instead of a current-thread one.
    pub(super) multi_thread: bool,
    /// Also check `accepted`'s `queue_length` against its documented meaning.
    pub(super) check_queue_length: bool,
    /// Which operations to generate.
    pub(super) mix: Mix,
}

/// Which operations a property generates.
#[derive(Clone, Copy)]
pub(super) enum Mix {
    /// Every kind of operation.
    All,
    /// Held jobs only: submissions, bursts, finishes and waits.
    Order,
}

fn kinds() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => Just(Kind::Held),
        2 => Just(Kind::Quick),
        1 => Just(Kind::EarlyPanic),
    ]
}

fn costs() -> impl Strategy<Value = u64> {
    prop_oneof![Just(1u64), Just(4), Just(20)]
}

pub(super) fn ops(mix: Mix) -> BoxedStrategy<Vec<Op>> {
    let bursts = prop::collection::vec((0..OWNERS, costs()), 2..=3).prop_map(Op::Burst);
    let waits = prop_oneof![Just(1u64), Just(5), Just(15)].prop_map(Op::Wait);
    if let Mix::Order = mix {
        let op = prop_oneof![
            1 => waits,
            3 => (0..OWNERS, costs()).prop_map(|(owner, cost_ms)| Op::Submit {
                owner,
                kind: Kind::Held,
                cost_ms
            }),
            3 => (0..4usize).prop_map(Op::Finish),
            3 => bursts,
        ];
        return prop::collection::vec(op, 1..30).boxed();
    }
    let op = prop_oneof![
        2 => waits,
        10 => (0..OWNERS, kinds(), costs()).prop_map(|(owner, kind, cost_ms)| Op::Submit {
            owner,
            kind,
            cost_ms
        }),
        6 => (0..4usize).prop_map(Op::Finish),
        3 => (0..8usize).prop_map(Op::Cancel),
        1 => (0..OWNERS).prop_map(Op::Disconnect),
        1 => (0..4usize).prop_map(Op::Panic),
        1 => Just(Op::Stall),
        2 => bursts,
    ];
    prop::collection::vec(op, 1..60).boxed()
}

pub(super) fn setups() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![Just(QueueOrder::Fair), Just(QueueOrder::Fifo)],
        prop_oneof![2 => Just(1000usize), 1 => 2..=6usize],
        prop_oneof![2 => Just(0usize), 1 => 1..=3usize],
        prop::collection::vec(1..=3u32, OWNERS),
    )
        .prop_map(
            |(order, max_waiting, max_waiting_per_party, weights)| Setup {
                order,
                max_waiting,
                max_waiting_per_party,
                weights,
            },
        )
}
