//! The calculator page (`/`): pick an op, edit its operands, submit over the page's WebSocket,
//! watch the live queue position, then see the result (or the error).
//!
//! The page owns the form state, one [`JobTracker`] for the job in flight and one lazily opened
//! [`Connection`]. The server renders the form with its defaults; the browser hydrates the same
//! markup (all state starts identical on both sides) and only then can submit.

use crate::client::ws::{Connection, SocketEvent};
use crate::pages::format;
use crate::pages::job::{JobTracker, Phase};
use crate::pages::operand::{OperandEditor, OperandFields};
use crate::pages::parse::parse_dim;
use crate::pages::result::ResultView;
use crate::protocol::{CalcJob, ClientMessage, Job, Op};
use leptos::prelude::*;
use leptos_meta::Title;

/// Which operand a form error is about, so its fields can be marked invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Culprit {
    A,
    B,
    Dim,
}

/// A problem found before sending: nothing was sent.
#[derive(Clone, Debug, PartialEq)]
struct FormError {
    culprit: Culprit,
    message: String,
}

/// The job the form describes, or what to fix.
fn build_job(
    op: Op,
    a: &OperandFields,
    b: &OperandFields,
    dim: &str,
) -> Result<CalcJob, FormError> {
    fn fail(culprit: Culprit, prefix: &'static str) -> impl Fn(String) -> FormError {
        move |message| FormError {
            culprit,
            message: format!("{prefix}{message}"),
        }
    }
    let a_input = a.to_input().map_err(fail(Culprit::A, "Operand a, "))?;
    let b_input = if op.is_binary() {
        Some(b.to_input().map_err(fail(Culprit::B, "Operand b, "))?)
    } else {
        None
    };
    let dim = if op.is_reduction() {
        parse_dim(dim, a_input.shape().len()).map_err(fail(Culprit::Dim, ""))?
    } else {
        None
    };
    Ok(CalcJob {
        op,
        a: Some(a_input),
        b: b_input,
        dim,
        ms: None,
        us: None,
    })
}

/// The op's label in the picker, e.g. `matmul — a @ b`.
fn op_label(op: Op) -> String {
    let what = match op {
        Op::Matmul => "matrix product a @ b",
        Op::Add => "a + b",
        Op::Sub => "a − b",
        Op::Mul => "a × b, element-wise",
        Op::Div => "a ÷ b, element-wise",
        Op::Transpose => "swap the last two dimensions",
        Op::Relu => "max(a, 0)",
        Op::Gelu => "GELU (erf form)",
        Op::Exp => "eᵃ",
        Op::Log => "natural log",
        Op::Sqrt => "square root",
        Op::Softmax => "softmax over the last dimension",
        Op::Sum => "sum",
        Op::Mean => "mean",
        Op::Max => "maximum",
        Op::Sleep => "hold the device (test mode)",
    };
    format!("{} — {what}", op.as_str())
}

/// The live status line for a phase.
fn status_text(tracker: &JobTracker) -> String {
    let text = match tracker.phase() {
        Phase::Idle => String::new(),
        Phase::Sending => "Sending…".into(),
        Phase::Waiting { position, eta_ms } => {
            format!(
                "Position {position} · about {} s",
                format::eta_seconds(*eta_ms)
            )
        }
        Phase::Running { .. } => "Running…".into(),
        Phase::Finished(f) if f.cached => format!(
            "Done · from the cache (computed in {} before)",
            format::millis(f.compute_ms)
        ),
        Phase::Finished(f) => format!("Done · computed in {}", format::millis(f.compute_ms)),
        Phase::Failed { code, .. } if code == "cancelled" => "Cancelled".into(),
        Phase::Failed { .. } => "Failed".into(),
    };
    if tracker.is_cancelling() {
        format!("{text} · cancelling…")
    } else {
        text
    }
}

/// The one error area: a problem in the form (nothing was sent) or the job's failure.
fn error_view(form: Option<FormError>, failure: Option<(String, String)>) -> Option<impl IntoView> {
    let (code, message) = match (form, failure) {
        (Some(e), _) => (None, e.message),
        (None, Some((code, message))) => (Some(code), message),
        (None, None) => return None,
    };
    Some(view! {
        <div class="error" data-testid="error" role="alert">
            {match code {
                Some(code) => view! { <code class="error-code" data-testid="error-code">{code}</code> }.into_any(),
                None => view! { <strong class="error-code">"Nothing was sent."</strong> }.into_any(),
            }}
            " "
            <span class="error-message">{message}</span>
        </div>
    })
}

/// The calculator page as a lazily loaded route: in the browser its code is a wasm file of its own
/// (like the chat's and the stats page's), so the main bundle holds only what every page shares.
pub struct CalculatorRoute;

#[leptos_router::lazy_route]
impl leptos_router::LazyRoute for CalculatorRoute {
    fn data() -> Self {
        CalculatorRoute
    }

    fn view(_this: Self) -> AnyView {
        crate::page_is_live();
        view! { <CalculatorPage/> }.into_any()
    }
}

/// The tensor calculator.
#[component]
pub fn CalculatorPage() -> impl IntoView {
    let op = RwSignal::new(Op::Matmul);
    let a = OperandFields::new("2,2", "1 2\n3 4");
    let b = OperandFields::new("2,2", "5 6\n7 8");
    let dim = RwSignal::new(String::new());
    let tracker = RwSignal::new(JobTracker::default());
    let form_error = RwSignal::new(None::<FormError>);
    let submissions = StoredValue::new(0u64);
    let connection = StoredValue::new_local(Connection::new(move |event| match event {
        SocketEvent::Message(msg) => {
            tracker.try_maybe_update(|t| (t.apply(msg), ()));
        }
        SocketEvent::Closed(reason) => {
            tracker.try_update(|t| t.connection_lost(&reason));
        }
    }));

    let send = move |msg: ClientMessage| connection.with_value(|c| c.send(&msg));

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if tracker.with_untracked(JobTracker::is_active) {
            return;
        }
        let job = match build_job(op.get_untracked(), &a, &b, &dim.read_untracked()) {
            Ok(job) => job,
            Err(e) => {
                form_error.set(Some(e));
                return;
            }
        };
        form_error.set(None);
        let client_ref = submissions.with_value(|n| format!("r{}", n + 1));
        submissions.update_value(|n| *n += 1);
        tracker.update(|t| t.submitted(client_ref.clone()));
        if let Err(e) = send(ClientMessage::Submit {
            client_ref,
            job: Job::Calc(job),
        }) {
            tracker.update(|t| t.connection_lost(&e));
        }
    };

    let on_cancel = move |_| {
        let Some(job_id) =
            tracker.with_untracked(|t| t.can_cancel().then(|| t.job_id().cloned()).flatten())
        else {
            return;
        };
        tracker.update(JobTracker::cancel_requested);
        if let Err(e) = send(ClientMessage::Cancel { job_id }) {
            tracker.update(|t| t.connection_lost(&e));
        }
    };

    let is_binary = move || op.get().is_binary();
    let is_reduction = move || op.get().is_reduction();
    let active = Memo::new(move |_| tracker.with(JobTracker::is_active));
    let can_cancel = Memo::new(move |_| tracker.with(JobTracker::can_cancel));
    let status = Memo::new(move |_| tracker.with(status_text));
    let finished = Memo::new(move |_| tracker.with(JobTracker::finished));
    let failure = Memo::new(move |_| {
        tracker.with(|t| t.failure().map(|(c, m)| (c.to_string(), m.to_string())))
    });
    let culprit = move || form_error.with(|e| e.as_ref().map(|e| e.culprit));

    view! {
        <Title text="Calculator · Turnstile"/>
        <div class="page calculator">
            <header class="page-header">
                <h1>"Tensor calculator"</h1>
                <p class="lede">
                    "Everyone's jobs share one device, taking turns fairly: if someone sends "
                    "many jobs at once, yours still goes ahead of their next one. "
                    "You see your place in the queue while you wait."
                </p>
            </header>
            <form class="card calc-form" on:submit=on_submit novalidate>
                <div class="field-row">
                    <div class="field field-op">
                        <label for="op">"Operation"</label>
                        <select
                            id="op"
                            name="op"
                            data-testid="op"
                            on:change=move |ev| {
                                let key = event_target_value(&ev);
                                if let Some(o) = Op::PUBLIC.into_iter().find(|o| o.as_str() == key) {
                                    op.set(o);
                                    form_error.set(None);
                                }
                            }
                        >
                            {Op::PUBLIC
                                .into_iter()
                                .map(|o| {
                                    view! {
                                        <option value=o.as_str() selected=move || op.get() == o>
                                            {op_label(o)}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    </div>
                    <Show when=is_reduction>
                        <div class="field field-narrow">
                            <label for="dim">"Dimension " <span class="optional">"(optional)"</span></label>
                            <input
                                id="dim"
                                type="text"
                                inputmode="numeric"
                                class="mono"
                                data-testid="dim"
                                placeholder="all"
                                aria-describedby="dim-hint"
                                aria-invalid=move || (culprit() == Some(Culprit::Dim)).then_some("true")
                                value=dim.get_untracked()
                                prop:value=move || dim.get()
                                on:input=move |ev| dim.set(event_target_value(&ev))
                            />
                            <small class="hint" id="dim-hint">"Empty reduces over everything."</small>
                        </div>
                    </Show>
                </div>
                <div class="operands">
                    <OperandEditor name="a" fields=a invalid=Signal::derive(move || culprit() == Some(Culprit::A))/>
                    <Show when=is_binary>
                        <OperandEditor name="b" fields=b invalid=Signal::derive(move || culprit() == Some(Culprit::B))/>
                    </Show>
                </div>
                <div class="actions">
                    <button type="submit" class="button primary" data-testid="submit" disabled=move || active.get()>
                        "Compute"
                    </button>
                    <Show when=move || can_cancel.get()>
                        <button type="button" class="button" data-testid="cancel" on:click=on_cancel>
                            "Cancel"
                        </button>
                    </Show>
                    <p class="status" data-testid="status" role="status" aria-live="polite">
                        {move || status.get()}
                    </p>
                </div>
                {move || error_view(form_error.get(), failure.get())}
            </form>
            {move || finished.get().map(|f| view! { <ResultView finished=f/> })}
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::job::Phase;

    #[test]
    fn status_line_reads_position_and_eta() {
        let mut t = JobTracker::default();
        assert_eq!(status_text(&t), "");
        t.submitted("r1".into());
        t.apply(crate::protocol::ServerMessage::Accepted {
            client_ref: "r1".into(),
            job_id: crate::protocol::JobId("j".into()),
            seq: 0,
            position: 2,
            queue_length: 3,
            eta_ms: 1260,
            conversation_id: None,
        });
        assert_eq!(
            t.phase(),
            &Phase::Waiting {
                position: 2,
                eta_ms: 1260
            }
        );
        assert_eq!(status_text(&t), "Position 2 · about 1.3 s");
        t.cancel_requested();
        assert_eq!(status_text(&t), "Position 2 · about 1.3 s · cancelling…");
    }

    #[test]
    fn every_public_op_has_a_label() {
        for op in Op::PUBLIC {
            assert!(op_label(op).starts_with(op.as_str()));
        }
    }
}
