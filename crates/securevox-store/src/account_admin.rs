//! Admin changes to accounts — role, disabled, deletion — guarded so that the server always
//! keeps at least one enabled admin, even when two admins act at the same moment.

use crate::sessions::revoke_sessions;
use crate::users::{fetch_user, UserRecord};
use crate::{Store, StoreError};
use securevox_domain::{clock, Role};
use sqlx::{Any, Transaction};

/// One change an admin makes to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    SetRole(Role),
    /// Disabling also ends every session of the account.
    SetDisabled(bool),
    Delete,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountChangeError {
    #[error("no such user")]
    NotFound,
    #[error("this is the last enabled admin")]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccountChangeError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl Store {
    /// Applies `changes` to one account, all or nothing, unless they would leave no enabled
    /// admin. Returns the account afterwards (`None` once deleted).
    ///
    /// The check and the change run in one transaction that first updates the account gate,
    /// so two admins demoting each other at once are serialised: the second sees the first's
    /// change and is refused.
    pub async fn change_account(
        &self,
        user_id: &str,
        changes: &[AccountChange],
    ) -> Result<Option<UserRecord>, AccountChangeError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE account_gate SET writes = writes + 1 WHERE id = 1")
            .execute(&mut **tx)
            .await?;
        let target = fetch_user(&mut **tx, user_id).await?.ok_or(AccountChangeError::NotFound)?;
        let (mut role, mut disabled, mut deleted) = (target.role, target.is_disabled(), false);
        for change in changes {
            match *change {
                AccountChange::SetRole(r) => role = r,
                AccountChange::SetDisabled(d) => disabled = d,
                AccountChange::Delete => deleted = true,
            }
        }
        let was_admin = target.role == Role::Admin && !target.is_disabled();
        let stays_admin = !deleted && role == Role::Admin && !disabled;
        if was_admin && !stays_admin {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL \
                 AND id <> $1",
            )
            .bind(user_id)
            .fetch_one(&mut **tx)
            .await?;
            if others == 0 {
                return Err(AccountChangeError::LastAdmin);
            }
        }
        for change in changes {
            apply(&mut tx, user_id, *change).await?;
        }
        let after = fetch_user(&mut **tx, user_id).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Disables (ending every session) or re-enables an account, with no last-admin guard
    /// (admin actions go through [`Store::change_account`]). False if the account is unknown.
    pub async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        self.apply_unguarded(user_id, AccountChange::SetDisabled(disabled)).await
    }

    /// Sets an account's role, with no last-admin guard. False if the account is unknown.
    pub async fn set_user_role(&self, user_id: &str, role: Role) -> Result<bool, StoreError> {
        self.apply_unguarded(user_id, AccountChange::SetRole(role)).await
    }

    /// Deletes an account and (by cascade) its sessions, with no last-admin guard. False if
    /// the account is unknown.
    pub async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
        self.apply_unguarded(user_id, AccountChange::Delete).await
    }

    async fn apply_unguarded(
        &self,
        user_id: &str,
        change: AccountChange,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = apply(&mut tx, user_id, change).await?;
        tx.commit().await?;
        Ok(changed)
    }
}

/// One change inside a transaction; true if the account existed.
async fn apply(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    change: AccountChange,
) -> Result<bool, sqlx::Error> {
    let now = clock::now();
    let query = match change {
        AccountChange::SetRole(role) => {
            sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
                .bind(role.as_str())
                .bind(now)
                .bind(user_id)
        }
        AccountChange::SetDisabled(disabled) => sqlx::query(
            // Keeps the original time when disabled twice.
            "UPDATE users SET disabled_at = CASE WHEN $1 = 1 THEN COALESCE(disabled_at, $2) \
             ELSE NULL END, updated_at = $2 WHERE id = $3",
        )
        .bind(i64::from(disabled))
        .bind(now)
        .bind(user_id),
        AccountChange::Delete => sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id),
    };
    let changed = query.execute(&mut **tx).await?.rows_affected() == 1;
    if changed && change == AccountChange::SetDisabled(true) {
        revoke_sessions(tx, user_id, now, None).await?;
    }
    Ok(changed)
}
