//! A solve that follows its own progress: starts `Status(ref)` beside `Solve`, turns BuildKit's batches
//! into [`StatusEvent`]s (step started, cached, completed, failed; each output line) for the caller, and
//! keeps the last lines of each step so that a failed build's error names the step and shows its output.
//!
//! Dropping the future cancels the build: its HTTP/2 streams are reset and BuildKit cancels the solve.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use super::Engine;
use super::control::{Control, new_reference};
use super::error::EngineError;
use super::grpc::Call;
use super::wire::{SolveRequest, SolveResponse, StatusRequest, StatusResponse};

/// How many output lines of each step are kept for the error of a failed build.
pub const LOG_TAIL_LINES: usize = 20;

/// A longer output line is cut here: the tail is for people, and one line must not hold megabytes.
const MAX_LINE_BYTES: usize = 4096;

/// BuildKit ends the status stream as the solve returns; its last batch may trail the reply a little.
const STATUS_GRACE: Duration = Duration::from_millis(500);

/// One change in a build's progress. `vertex` is the step's digest, `name` what BuildKit calls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusEvent {
    Started {
        vertex: String,
        name: String,
    },
    /// The step's result came from the cache.
    Cached {
        vertex: String,
        name: String,
    },
    Completed {
        vertex: String,
        name: String,
        duration: Option<Duration>,
    },
    Failed {
        vertex: String,
        name: String,
        error: String,
    },
    /// One line of a step's output (stream 1 is stdout, 2 stderr).
    Log {
        vertex: String,
        name: String,
        stream: i64,
        line: String,
    },
    /// A counter inside a step, such as the bytes of one layer pulled.
    Progress {
        vertex: String,
        id: String,
        current: i64,
        total: i64,
    },
}

impl Engine {
    /// Connects to BuildKit and runs [`Control::solve`].
    pub async fn solve(
        &self,
        request: SolveRequest,
        on_status: impl FnMut(StatusEvent),
    ) -> Result<SolveResponse, EngineError> {
        self.control().await?.solve(request, on_status).await
    }
}

impl Control {
    /// Solves `request` (given a fresh reference when it has none), calling `on_status` as the build
    /// progresses. A failed build gives [`EngineError::SolveFailed`] with the failed step and its output.
    pub async fn solve(
        &self,
        mut request: SolveRequest,
        mut on_status: impl FnMut(StatusEvent),
    ) -> Result<SolveResponse, EngineError> {
        if request.reference.is_empty() {
            request.reference = new_reference();
        }
        // Status first: BuildKit waits for a solve with the reference to appear, but not for one that ended.
        let status_call = self.channel.start("Status", &StatusRequest { reference: request.reference.clone() }).await?;
        let solve = self.channel.start("Solve", &request).await?.unary::<SolveResponse>();
        let status = status_replies(status_call);
        tokio::pin!(solve, status);

        let mut steps = Steps::default();
        let mut status_open = true;
        let mut outcome = None;
        let grace = tokio::time::sleep(STATUS_GRACE);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                result = &mut solve, if outcome.is_none() => {
                    outcome = Some(result);
                    if !status_open {
                        break;
                    }
                    grace.as_mut().reset(tokio::time::Instant::now() + STATUS_GRACE);
                }
                reply = status.next(), if status_open => match reply {
                    Some(Ok(reply)) => steps.apply(reply, &mut on_status),
                    // A broken status stream loses progress, not the build: the solve's reply still decides.
                    Some(Err(_)) | None => {
                        status_open = false;
                        if outcome.is_some() {
                            break;
                        }
                    }
                },
                () = &mut grace, if outcome.is_some() => break,
            }
        }
        steps.flush(&mut on_status);
        match outcome {
            Some(Err(EngineError::Grpc { method: "Solve", message, .. })) => Err(steps.failure(message)),
            Some(result) => result,
            None => unreachable!("the loop ends only after the solve has replied"),
        }
    }
}

enum StatusState {
    Call(Call),
    Open(super::grpc::Replies<StatusResponse>),
}

fn status_replies(call: Call) -> impl Stream<Item = Result<StatusResponse, EngineError>> {
    futures_util::stream::unfold(Some(StatusState::Call(call)), |state| async move {
        let mut replies = match state? {
            StatusState::Call(call) => match call.replies().await {
                Ok(replies) => replies,
                Err(error) => return Some((Err(error), None)),
            },
            StatusState::Open(replies) => replies,
        };
        match replies.next().await {
            Ok(Some(reply)) => Some((Ok(reply), Some(StatusState::Open(replies)))),
            Ok(None) => None,
            Err(error) => Some((Err(error), None)),
        }
    })
}

/// What is known of each step: BuildKit resends a vertex on every change, so events fire on transitions.
#[derive(Default)]
struct Steps {
    by_digest: HashMap<String, Step>,
    /// Failed steps in the order they failed: the first real failure is the one to report.
    failed: Vec<String>,
}

#[derive(Default)]
struct Step {
    name: String,
    started: bool,
    done: bool,
    error: Option<String>,
    partial_line: Vec<u8>,
    stream: i64,
    tail: VecDeque<String>,
}

impl Steps {
    fn apply(&mut self, reply: StatusResponse, on_status: &mut impl FnMut(StatusEvent)) {
        for vertex in reply.vertexes {
            let step = self.by_digest.entry(vertex.digest.clone()).or_default();
            if !vertex.name.is_empty() {
                step.name = vertex.name.clone();
            }
            let (digest, name) = (vertex.digest.clone(), step.name.clone());
            if vertex.cached && !step.done {
                step.done = true;
                on_status(StatusEvent::Cached { vertex: digest, name });
                continue;
            }
            if vertex.started.is_some() && !step.started {
                step.started = true;
                on_status(StatusEvent::Started { vertex: digest.clone(), name: name.clone() });
            }
            if !vertex.error.is_empty() && step.error.is_none() {
                step.flush(&digest, on_status);
                step.error = Some(vertex.error.clone());
                step.done = true;
                self.failed.push(digest.clone());
                on_status(StatusEvent::Failed { vertex: digest, name, error: vertex.error });
            } else if let Some(completed) = vertex.completed
                && !step.done
            {
                step.done = true;
                let duration = vertex.started.and_then(|started| started.until(completed));
                on_status(StatusEvent::Completed { vertex: digest, name, duration });
            }
        }
        for status in reply.statuses {
            let (vertex, id, current, total) = (status.vertex, status.id, status.current, status.total);
            on_status(StatusEvent::Progress { vertex, id, current, total });
        }
        for log in reply.logs {
            let step = self.by_digest.entry(log.vertex.clone()).or_default();
            step.stream = log.stream;
            for &byte in &log.msg {
                if byte == b'\n' {
                    step.end_line(&log.vertex, on_status);
                } else if step.partial_line.len() < MAX_LINE_BYTES {
                    step.partial_line.push(byte);
                }
            }
        }
    }

    /// Ends the lines still open when the build ends.
    fn flush(&mut self, on_status: &mut impl FnMut(StatusEvent)) {
        for (digest, step) in &mut self.by_digest {
            step.flush(digest, on_status);
        }
    }

    /// The error of a failed solve: the first step that failed for its own reason (the others are
    /// usually cancelled because of it), with that step's last lines.
    fn failure(&self, solve_message: String) -> EngineError {
        let cancelled = |digest: &&String| {
            self.by_digest[*digest].error.as_deref().is_some_and(|error| error.contains("context canceled"))
        };
        let first = self.failed.iter().find(|digest| !cancelled(digest)).or(self.failed.first());
        match first.map(|digest| &self.by_digest[digest]) {
            Some(step) => EngineError::SolveFailed {
                step: Some(step.name.clone()),
                message: step.error.clone().unwrap_or(solve_message),
                log_tail: step.tail.iter().cloned().collect(),
            },
            None => EngineError::SolveFailed { step: None, message: solve_message, log_tail: Vec::new() },
        }
    }
}

impl Step {
    fn end_line(&mut self, digest: &str, on_status: &mut impl FnMut(StatusEvent)) {
        let bytes = std::mem::take(&mut self.partial_line);
        let line = String::from_utf8_lossy(&bytes).trim_end_matches('\r').to_string();
        if self.tail.len() == LOG_TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        let (vertex, name, stream) = (digest.to_string(), self.name.clone(), self.stream);
        on_status(StatusEvent::Log { vertex, name, stream, line });
    }

    fn flush(&mut self, digest: &str, on_status: &mut impl FnMut(StatusEvent)) {
        if !self.partial_line.is_empty() {
            self.end_line(digest, on_status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::{Timestamp, Vertex, VertexLog};
    use super::*;

    fn vertex(digest: &str, started: bool, completed: bool, error: &str) -> Vertex {
        let at = |seconds| Some(Timestamp { seconds, nanos: 0 });
        Vertex {
            digest: digest.into(),
            name: format!("step {digest}"),
            started: if started { at(10) } else { None },
            completed: if completed { at(12) } else { None },
            error: error.into(),
            ..Vertex::default()
        }
    }

    fn log(digest: &str, text: &str) -> VertexLog {
        VertexLog { vertex: digest.into(), stream: 1, msg: text.as_bytes().to_vec(), timestamp: None }
    }

    #[test]
    fn events_fire_once_per_transition_and_lines_join_across_chunks() {
        let mut steps = Steps::default();
        let mut events = Vec::new();
        let mut record = |event| events.push(event);
        let batch = |vertexes, logs| StatusResponse { vertexes, statuses: Vec::new(), logs };
        steps.apply(batch(vec![vertex("a", true, false, "")], vec![log("a", "hel")]), &mut record);
        steps.apply(batch(vec![vertex("a", true, false, "")], vec![log("a", "lo\nwor")]), &mut record);
        steps.apply(batch(vec![vertex("a", true, true, "")], vec![]), &mut record);
        steps.flush(&mut record);
        let line =
            |text: &str| StatusEvent::Log { vertex: "a".into(), name: "step a".into(), stream: 1, line: text.into() };
        assert_eq!(
            events,
            [
                StatusEvent::Started { vertex: "a".into(), name: "step a".into() },
                line("hello"),
                StatusEvent::Completed {
                    vertex: "a".into(),
                    name: "step a".into(),
                    duration: Some(Duration::from_secs(2))
                },
                line("wor"),
            ]
        );
    }

    #[test]
    fn a_failure_names_the_step_that_failed_first_for_its_own_reason_with_its_last_lines() {
        let mut steps = Steps::default();
        let text: String = (1..=25).map(|n| format!("line {n}\n")).collect();
        let reply = StatusResponse {
            vertexes: vec![vertex("b", true, true, "context canceled"), vertex("a", true, true, "exit code: 3")],
            statuses: Vec::new(),
            logs: vec![log("a", &text)],
        };
        steps.apply(reply, &mut |_| {});
        let EngineError::SolveFailed { step, message, log_tail } = steps.failure("solve failed".into()) else {
            panic!("not a solve failure");
        };
        assert_eq!((step.as_deref(), message.as_str()), (Some("step a"), "exit code: 3"));
        assert_eq!(log_tail.len(), LOG_TAIL_LINES);
        assert_eq!((log_tail[0].as_str(), log_tail[19].as_str()), ("line 6", "line 25"));
    }
}
