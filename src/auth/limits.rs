//! Per-caller rate limits: requests per minute (GCRA, from `governor`) and uploads in
//! progress at once. Callers are keyed by [`super::Identity::label`] when known, else by
//! client address.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::errors::AuthError;

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The numbers behind the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the allowance is whole again.
    pub reset_seconds: u64,
}

pub struct RateLimits {
    per_minute: u32,
    limiter: Limiter,
    max_uploads: usize,
    uploads: Arc<Mutex<HashMap<String, usize>>>,
}

impl RateLimits {
    pub fn new(per_minute: NonZeroU32, max_uploads: usize) -> RateLimits {
        RateLimits {
            per_minute: per_minute.get(),
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)).with_middleware::<StateInformationMiddleware>(),
            max_uploads,
            uploads: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Counts one request against a caller's allowance.
    pub fn check(&self, caller: &str) -> Result<RateInfo, AuthError> {
        let seconds_per_request = 60.0 / f64::from(self.per_minute);
        match self.limiter.check_key(&caller.to_owned()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let used = self.per_minute - remaining;
                Ok(RateInfo {
                    limit: self.per_minute,
                    remaining,
                    reset_seconds: (f64::from(used) * seconds_per_request).ceil() as u64,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(AuthError::RateLimited { retry_after: wait.as_secs() + 1, limit: self.per_minute })
            }
        }
    }

    /// Forgets callers whose allowance is whole again, so the table stays small.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }

    /// Holds one of a caller's upload slots until the permit is dropped.
    pub fn upload_permit(&self, caller: &str) -> Result<UploadPermit, AuthError> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = uploads.entry(caller.to_owned()).or_insert(0);
        if *count >= self.max_uploads {
            return Err(AuthError::TooManyUploads { max: self.max_uploads });
        }
        *count += 1;
        Ok(UploadPermit { caller: caller.to_owned(), uploads: Arc::clone(&self.uploads) })
    }
}

/// One upload in progress; its slot is freed when dropped (also on disconnect).
pub struct UploadPermit {
    caller: String,
    uploads: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        let mut uploads = self.uploads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = uploads.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                uploads.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hundred_and_first_request_in_a_minute_is_refused_per_caller() {
        let limits = RateLimits::new(NonZeroU32::new(100).unwrap(), 2);
        for n in 0..100 {
            let info = limits.check("key:a").unwrap();
            assert_eq!(info.remaining, 99 - n);
        }
        let Err(AuthError::RateLimited { retry_after, limit: 100 }) = limits.check("key:a") else { panic!() };
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        assert_eq!(limits.check("key:b").unwrap().remaining, 99);
    }

    #[test]
    fn upload_slots_are_per_caller_and_freed_on_drop() {
        let limits = RateLimits::new(NonZeroU32::new(100).unwrap(), 2);
        let first = limits.upload_permit("a").unwrap();
        let _second = limits.upload_permit("a").unwrap();
        assert!(matches!(limits.upload_permit("a"), Err(AuthError::TooManyUploads { max: 2 })));
        let _other = limits.upload_permit("b").unwrap();
        drop(first);
        assert!(limits.upload_permit("a").is_ok());
    }
}
