//! Call sessions (K4) and their members: the durable record behind live signaling and call
//! history. The live state of a call is owned by its room task; this is what it writes down.

use crate::{Store, StoreError};
use securevox_domain::call::{CallState, EndReason, Media, Response};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct NewCall<'a> {
    pub id: &'a str,
    pub caller_id: &'a str,
    pub media: Media,
    pub invitees: &'a [String],
    pub created_at: i64,
}

/// One call as a member sees it in their history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallHistoryEntry {
    pub id: String,
    pub caller_id: String,
    pub media: Media,
    pub state: CallState,
    pub end_reason: Option<EndReason>,
    pub created_at: i64,
    pub answered_at: Option<i64>,
    pub connected_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Whether the member reading the history placed the call.
    pub viewer_is_caller: bool,
    pub viewer_response: Option<Response>,
    /// Every member, caller first.
    pub members: Vec<String>,
}

impl CallHistoryEntry {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            caller_id: row.try_get("caller_id")?,
            media: Media::from_stored(&row.try_get::<String, _>("media")?),
            state: CallState::from_stored(&row.try_get::<String, _>("state")?),
            end_reason: row
                .try_get::<Option<String>, _>("end_reason")?
                .and_then(|r| EndReason::from_stored(&r)),
            created_at: row.try_get("created_at")?,
            answered_at: row.try_get("answered_at")?,
            connected_at: row.try_get("connected_at")?,
            ended_at: row.try_get("ended_at")?,
            viewer_is_caller: row.try_get::<i64, _>("is_caller")? != 0,
            viewer_response: row
                .try_get::<Option<String>, _>("response")?
                .and_then(|r| Response::from_stored(&r)),
            members: Vec::new(),
        })
    }
}

const HISTORY_COLUMNS: &str = "c.id, c.caller_id, c.media, c.state, c.end_reason, c.created_at, \
     c.answered_at, c.connected_at, c.ended_at, m.is_caller, m.response";

impl Store {
    /// Records a new call in state `pending` with its caller and invitees.
    pub async fn create_call(&self, call: &NewCall<'_>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO calls (id, caller_id, media, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(call.id)
        .bind(call.caller_id)
        .bind(call.media.as_str())
        .bind(CallState::Pending.as_str())
        .bind(call.created_at)
        .execute(&mut **tx)
        .await?;
        let members = std::iter::once((call.caller_id, 1_i64))
            .chain(call.invitees.iter().map(|id| (id.as_str(), 0)));
        for (user_id, is_caller) in members {
            sqlx::query(
                "INSERT INTO call_members (call_id, user_id, is_caller) VALUES ($1, $2, $3)",
            )
            .bind(call.id)
            .bind(user_id)
            .bind(is_caller)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves a live call to `state`, stamping when it was first answered or connected.
    pub async fn set_call_state(
        &self,
        id: &str,
        state: CallState,
        at: i64,
    ) -> Result<(), StoreError> {
        let answered = matches!(state, CallState::Answered | CallState::Connected);
        let connected = state == CallState::Connected;
        sqlx::query(
            "UPDATE calls SET state = $2, updated_at = $3, \
             answered_at = CASE WHEN $4 = 1 THEN COALESCE(answered_at, $3) ELSE answered_at END, \
             connected_at = CASE WHEN $5 = 1 THEN COALESCE(connected_at, $3) ELSE connected_at END \
             WHERE id = $1 AND state <> 'ended'",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(at)
        .bind(i64::from(answered))
        .bind(i64::from(connected))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a live call. Ending an ended call changes nothing.
    pub async fn end_call(
        &self,
        id: &str,
        reason: EndReason,
        error: Option<&str>,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE calls SET state = 'ended', end_reason = $2, error = $3, updated_at = $4, \
             ended_at = $4 WHERE id = $1 AND state <> 'ended'",
        )
        .bind(id)
        .bind(reason.as_str())
        .bind(error)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends every call still live, e.g. at start after a crash: their rooms are gone.
    pub async fn end_live_calls(&self, reason: EndReason, at: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET state = 'ended', end_reason = $1, updated_at = $2, ended_at = $2 \
             WHERE state <> 'ended'",
        )
        .bind(reason.as_str())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records an invitee's answer (the first answer wins).
    pub async fn set_call_response(
        &self,
        call_id: &str,
        user_id: &str,
        response: Response,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE call_members SET response = $3, responded_at = $4 \
             WHERE call_id = $1 AND user_id = $2 AND response IS NULL",
        )
        .bind(call_id)
        .bind(user_id)
        .bind(response.as_str())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records when a member first joined the call's signaling room.
    pub async fn set_call_joined(
        &self,
        call_id: &str,
        user_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE call_members SET joined_at = COALESCE(joined_at, $3) \
             WHERE call_id = $1 AND user_id = $2",
        )
        .bind(call_id)
        .bind(user_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A member's calls, newest first: at most `limit`, older than the call `before` if given.
    pub async fn call_history(
        &self,
        user_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CallHistoryEntry>, StoreError> {
        let rows = if let Some(before) = before {
            let sql = format!(
                "SELECT {HISTORY_COLUMNS} FROM call_members m JOIN calls c ON c.id = m.call_id \
                 JOIN calls b ON b.id = $2 \
                 WHERE m.user_id = $1 AND (c.created_at < b.created_at \
                 OR (c.created_at = b.created_at AND c.id < b.id)) \
                 ORDER BY c.created_at DESC, c.id DESC LIMIT $3"
            );
            sqlx::query(&sql)
                .bind(user_id)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
        } else {
            let sql = format!(
                "SELECT {HISTORY_COLUMNS} FROM call_members m JOIN calls c ON c.id = m.call_id \
                 WHERE m.user_id = $1 ORDER BY c.created_at DESC, c.id DESC LIMIT $2"
            );
            sqlx::query(&sql).bind(user_id).bind(i64::from(limit)).fetch_all(&self.pool).await?
        };
        let mut entries =
            rows.iter().map(CallHistoryEntry::from_row).collect::<Result<Vec<_>, _>>()?;
        if entries.is_empty() {
            return Ok(entries);
        }
        let placeholders =
            (1..=entries.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT call_id, user_id FROM call_members WHERE call_id IN ({placeholders}) \
             ORDER BY is_caller DESC, user_id"
        );
        let mut query = sqlx::query(&sql);
        for entry in &entries {
            query = query.bind(entry.id.clone());
        }
        for row in query.fetch_all(&self.pool).await? {
            let call_id: String = row.try_get("call_id")?;
            if let Some(entry) = entries.iter_mut().find(|e| e.id == call_id) {
                entry.members.push(row.try_get("user_id")?);
            }
        }
        Ok(entries)
    }

    /// Users who share a call with `user_id`: the contacts that see their presence until
    /// explicit contacts exist.
    pub async fn call_contacts(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT o.user_id FROM call_members m \
             JOIN call_members o ON o.call_id = m.call_id \
             WHERE m.user_id = $1 AND o.user_id <> $1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.try_get("user_id").map_err(StoreError::from)).collect()
    }
}
