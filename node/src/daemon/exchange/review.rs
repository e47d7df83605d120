//! Results held for the provider's review. An asset whose policy says `review = true` keeps
//! each completed job's result on the provider until its operator approves it (then it
//! leaves, as any result) or rejects it (then only the usage record leaves, saying why);
//! one not decided within `[compute] review_wait` is withheld. The registry is bounded:
//! at most `[compute] queued_jobs` results wait at once, a result beyond that is withheld.

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

use gaiamesh_protocol::time::UnixMillis;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::daemon::CommandError;

/// The longest part of a result shown in the list of reviews.
const PREVIEW_BYTES: usize = 4096;

/// The operator's decision on one result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The result leaves.
    Approve,
    /// The result stays; the consumer is told why.
    Reject(String),
}

/// `POST /api/v1/compute/reviews/{id}`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewDecision {
    /// `true`: the result goes to the consumer; `false`: it stays here.
    pub(crate) approve: bool,
    /// Why it is rejected (sent to the consumer in the usage record).
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// One result waiting for the operator.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct ReviewView {
    pub(crate) id: u64,
    /// The consumer's peer id.
    pub(crate) consumer: String,
    pub(crate) asset: String,
    /// `NAME@VERSION`.
    pub(crate) algorithm: String,
    pub(crate) args: Vec<String>,
    pub(crate) result_bytes: u64,
    pub(crate) result_blake3: String,
    /// The result as text (lossy UTF-8): its first 4 KiB in the list, all of it alone.
    pub(crate) result: String,
    /// When it started waiting (ms since the epoch).
    pub(crate) waiting_since: u64,
    /// When it is withheld if nobody decides (ms since the epoch).
    pub(crate) decide_by: u64,
}

/// `GET /api/v1/compute/reviews`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct ReviewsAnswer {
    pub(crate) reviews: Vec<ReviewView>,
}

struct Pending {
    view: ReviewView,
    result: std::sync::Arc<Vec<u8>>,
    decide: oneshot::Sender<Decision>,
}

/// The results waiting for review.
#[derive(Default)]
pub(crate) struct Reviews {
    inner: Mutex<(u64, BTreeMap<u64, Pending>)>,
}

impl std::fmt::Debug for Reviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviews").finish_non_exhaustive()
    }
}

/// A result waiting: its id and where the decision arrives. Dropping it (the job ended
/// another way) takes the result off the list.
pub(crate) struct Waiting<'a> {
    pub(crate) id: u64,
    pub(crate) decision: oneshot::Receiver<Decision>,
    reviews: &'a Reviews,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.reviews.lock().1.remove(&self.id);
    }
}

impl Reviews {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<u64, Pending>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists `view` (its id and result filled in here) with its `result`; `None` when
    /// `most` results already wait.
    pub(crate) fn hold(
        &self,
        mut view: ReviewView,
        result: std::sync::Arc<Vec<u8>>,
        most: usize,
    ) -> Option<Waiting<'_>> {
        let mut inner = self.lock();
        if inner.1.len() >= most {
            return None;
        }
        inner.0 += 1;
        let id = inner.0;
        view.id = id;
        view.result_bytes = result.len() as u64;
        let (decide, decision) = oneshot::channel();
        inner.1.insert(
            id,
            Pending {
                view,
                result,
                decide,
            },
        );
        Some(Waiting {
            id,
            decision,
            reviews: self,
        })
    }

    /// Every waiting result, each with the start of its text.
    pub(crate) fn list(&self) -> Vec<ReviewView> {
        self.lock()
            .1
            .values()
            .map(|p| {
                let mut v = p.view.clone();
                v.result = preview(&p.result, PREVIEW_BYTES);
                v
            })
            .collect()
    }

    /// One waiting result with all of its text.
    pub(crate) fn get(&self, id: u64) -> Result<ReviewView, CommandError> {
        let inner = self.lock();
        let p = inner.1.get(&id).ok_or_else(|| not_waiting(id))?;
        let mut v = p.view.clone();
        v.result = String::from_utf8_lossy(&p.result).into_owned();
        Ok(v)
    }

    /// Decides on result `id`; its view as it was.
    pub(crate) fn decide(
        &self,
        id: u64,
        decision: &ReviewDecision,
    ) -> Result<ReviewView, CommandError> {
        let decision = if decision.approve {
            if decision.reason.is_some() {
                return Err(CommandError::Invalid(
                    "a reason is for a rejection; an approval has none".into(),
                ));
            }
            Decision::Approve
        } else {
            let reason = decision
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    CommandError::Invalid(
                        "a rejection needs a reason (the consumer is told it)".into(),
                    )
                })?;
            if reason.len() > 1024 {
                return Err(CommandError::Invalid(format!(
                    "the reason is {} bytes, at most 1024",
                    reason.len()
                )));
            }
            Decision::Reject(reason.to_owned())
        };
        let p = self.lock().1.remove(&id).ok_or_else(|| not_waiting(id))?;
        let mut view = p.view;
        view.result = preview(&p.result, PREVIEW_BYTES);
        // The job may have ended in the meantime (the consumer left): nothing to deliver to.
        p.decide
            .send(decision)
            .map_err(|_| CommandError::Conflict(format!("result {id} no longer waits")))?;
        Ok(view)
    }
}

fn not_waiting(id: u64) -> CommandError {
    CommandError::NotFound(format!("no result {id} waits for review"))
}

/// The first `most` bytes of `bytes` as text (a character cut in two shows as U+FFFD).
fn preview(bytes: &[u8], most: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(most)]);
    text.into_owned()
}

/// `now` + `wait`, in ms.
pub(crate) fn deadline(now: UnixMillis, wait: std::time::Duration) -> u64 {
    now.0
        .saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Decision, ReviewDecision, ReviewView, Reviews};

    fn view() -> ReviewView {
        ReviewView {
            consumer: "peer".into(),
            asset: "weather".into(),
            ..ReviewView::default()
        }
    }

    #[test]
    fn a_held_result_is_listed_decided_once_and_gone_when_its_job_ends() {
        let reviews = Reviews::default();
        let mut w = reviews
            .hold(view(), Arc::new(b"x".repeat(5000)), 2)
            .unwrap();
        assert_eq!(reviews.list().len(), 1);
        assert_eq!(reviews.list()[0].result.len(), 4096);
        assert_eq!(reviews.list()[0].result_bytes, 5000);
        assert_eq!(reviews.get(w.id).unwrap().result.len(), 5000);
        let bad = ReviewDecision {
            approve: false,
            reason: Some("  ".into()),
        };
        assert!(
            reviews
                .decide(w.id, &bad)
                .unwrap_err()
                .to_string()
                .contains("reason")
        );
        let reject = ReviewDecision {
            approve: false,
            reason: Some("names a station".into()),
        };
        reviews.decide(w.id, &reject).unwrap();
        assert_eq!(
            w.decision.try_recv().unwrap(),
            Decision::Reject("names a station".into())
        );
        assert!(reviews.list().is_empty());
        assert!(reviews.decide(w.id, &reject).is_err());
        // dropped without a decision (the consumer left): off the list
        let w = reviews.hold(view(), Arc::new(vec![1]), 2).unwrap();
        drop(w);
        assert!(reviews.list().is_empty());
    }

    #[test]
    fn no_more_than_the_bound_wait() {
        let reviews = Reviews::default();
        let _a = reviews.hold(view(), Arc::new(vec![]), 2).unwrap();
        let _b = reviews.hold(view(), Arc::new(vec![]), 2).unwrap();
        assert!(reviews.hold(view(), Arc::new(vec![]), 2).is_none());
    }
}
