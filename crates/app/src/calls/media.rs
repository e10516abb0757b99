//! The call's audio socket, transport aside: who may open it, and the counters of what it
//! relayed and dropped. The HTTP layer moves the frames.

use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wagate_domain::call::CallStatus;
use wagate_domain::ids::CallId;

use super::CallService;
use crate::connector::calling::{CallError, CallMedia};
use crate::error::{AppError, RuleError};

/// Frames the media sockets moved and dropped, since the server started.
#[derive(Debug, Default)]
pub struct MediaMetrics {
    /// Frames from clients passed to the other phone.
    pub frames_to_phone: AtomicU64,
    /// Frames from the other phone passed to clients.
    pub frames_to_client: AtomicU64,
    /// Frames dropped because the side they were going to did not keep up (a slow client
    /// loses frames, never the server's memory).
    pub frames_dropped: AtomicU64,
    /// Frames refused because they were not [`crate::connector::calling::FRAME_BYTES`] long.
    pub frames_malformed: AtomicU64,
}

impl MediaMetrics {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why a media socket was refused.
#[derive(Debug, thiserror::Error)]
pub enum MediaRefused {
    /// No such call, or the token is not the call's.
    #[error("unknown call or wrong media token")]
    BadToken,
    /// Something else (the call is not answered, has ended, or is not live here).
    #[error(transparent)]
    Other(#[from] AppError),
}

impl CallService {
    /// The call `id` if `token` is its media token and its audio can flow now (it is
    /// answered); nothing is opened yet.
    pub async fn authorize_media(
        &self,
        id: &str,
        token: &str,
    ) -> Result<wagate_store::CallRecord, MediaRefused> {
        let id = CallId::parse(id).map_err(|_| MediaRefused::BadToken)?;
        let call = self
            .store
            .call_by_id(&id)
            .await
            .map_err(AppError::from)?
            .ok_or(MediaRefused::BadToken)?;
        // Compared as digests so the comparison's time says nothing about the token.
        if Sha256::digest(token.as_bytes()) != Sha256::digest(call.media_token.as_bytes()) {
            return Err(MediaRefused::BadToken);
        }
        match call.status {
            CallStatus::Answered => Ok(call),
            CallStatus::Ended => Err(AppError::from(RuleError::CallEnded).into()),
            s => Err(AppError::from(RuleError::CallNotNow(format!(
                "the call is {}; its audio flows once it is answered",
                s.as_str()
            )))
            .into()),
        }
    }

    /// Opens the audio of an authorized call (a second open replaces the first).
    pub async fn open_media(
        &self,
        call: &wagate_store::CallRecord,
    ) -> Result<CallMedia, MediaRefused> {
        let calls = self.calling()?;
        let provider = call.provider_id.as_deref().unwrap_or_default();
        calls
            .call_media(&call.line_id, provider)
            .await
            .map_err(|e| match e {
                CallError::Unsupported(m) => AppError::from(RuleError::CallingUnavailable(m)),
                e => AppError::from(RuleError::CallNotNow(format!(
                    "the call's audio is not available on this server: {e}"
                ))),
            })
            .map_err(MediaRefused::Other)
    }
}
