//! Retries around every network operation: takes a [`RetryPolicy`] and an operation that can be
//! started again from the beginning, gives its first success or its last failure.
//!
//! Only transient failures are retried ([`RegistryError::is_transient`]: 5xx, 429, refused, reset or
//! timed-out connections); a 4xx other than 429 is an answer, and asking again would get the same one.
//! The delay doubles from [`RetryPolicy::first_delay`] up to [`RetryPolicy::max_delay`]; a registry's
//! `Retry-After` replaces it when longer, within the same cap.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::error::RegistryError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub attempts: u32,
    /// The delay before the first retry; each further retry waits twice as long.
    pub first_delay: Duration,
    /// The longest single wait, whether from the backoff or a `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, first_delay: Duration::from_millis(100), max_delay: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// No waiting, for tests of what fails after how many attempts.
    pub fn immediate(attempts: u32) -> RetryPolicy {
        RetryPolicy { attempts, first_delay: Duration::ZERO, max_delay: Duration::ZERO }
    }

    /// The wait before retry number `retry` (1 for the first retry), without a `Retry-After`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    fn wait(&self, retry: u32, error: &RegistryError) -> Duration {
        let asked = error.retry_after().unwrap_or_default().min(self.max_delay);
        self.backoff(retry).max(asked)
    }
}

/// Runs `operation` until it succeeds, fails for good, or the policy's attempts are spent; counts
/// each retry in `retries` so callers can report them.
pub async fn retry<T, Operation, Attempt>(
    policy: &RetryPolicy,
    retries: &AtomicU32,
    mut operation: Operation,
) -> Result<T, RegistryError>
where
    Operation: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, RegistryError>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && attempt < policy.attempts.max(1) => {
                tokio::time::sleep(policy.wait(attempt, &error)).await;
                retries.fetch_add(1, Ordering::Relaxed);
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// A `Retry-After` in seconds. The HTTP-date form is rare from registries and falls back to the
/// backoff, which is what a missing header gets too.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn status(code: u16, retry_after: Option<Duration>) -> RegistryError {
        RegistryError::Status {
            operation: "op".into(),
            registry: "r".into(),
            status: code,
            detail: String::new(),
            retry_after,
        }
    }

    #[test]
    fn the_backoff_doubles_from_the_first_delay_up_to_the_cap_and_retry_after_can_lengthen_it() {
        let policy = RetryPolicy::default();
        let waits: Vec<u128> = (1..=5).map(|retry| policy.backoff(retry).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600]);
        assert_eq!(policy.backoff(30), policy.max_delay);
        assert_eq!(policy.wait(1, &status(429, Some(Duration::from_secs(2)))), Duration::from_secs(2));
        assert_eq!(policy.wait(1, &status(429, Some(Duration::from_secs(3600)))), policy.max_delay);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[tokio::test]
    async fn two_server_errors_then_success_succeeds_on_the_third_attempt() {
        let (calls, retries) = (AtomicUsize::new(0), AtomicU32::new(0));
        let result = retry(&RetryPolicy::immediate(5), &retries, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(status(500, None)),
                1 => Err(status(429, None)),
                _ => Ok("pushed"),
            }
        })
        .await;
        assert_eq!(result.unwrap(), "pushed");
        assert_eq!((calls.load(Ordering::SeqCst), retries.load(Ordering::SeqCst)), (3, 2));
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried_and_transient_ones_stop_after_the_last_attempt() {
        let calls = AtomicUsize::new(0);
        let result: Result<(), _> = retry(&RetryPolicy::immediate(5), &AtomicU32::new(0), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(status(404, None))
        })
        .await;
        assert!(matches!(result, Err(RegistryError::Status { status: 404, .. })));
        assert_eq!(calls.swap(0, Ordering::SeqCst), 1);
        let result: Result<(), _> = retry(&RetryPolicy::immediate(3), &AtomicU32::new(0), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(RegistryError::Connection { operation: "o".into(), registry: "r".into(), cause: "reset".into() })
        })
        .await;
        assert!(matches!(result, Err(RegistryError::Connection { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
