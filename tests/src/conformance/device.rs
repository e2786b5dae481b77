//! Conformance cases of `DeviceStore` (RFC 8628 device authorization requests).
use super::{Stores, at, code, scopes};
use anyhow::{Result, ensure};
use oauth_core::domain::{DeviceGrant, DeviceStatus, Poll};
use oauth_core::store::StoreError;

const T: i64 = 1_800_000_000;

fn device(hash: &str, user_code_hash: &str) -> Result<DeviceGrant> {
    Ok(DeviceGrant {
        device_hash: hash.into(),
        user_code_hash: user_code_hash.into(),
        client_id: "cl_1".into(),
        scope: scopes("openid offline_access")?,
        resources: Vec::new(),
        created_at: T,
        expires_at: T + 600,
        interval: 5,
        next_poll: T,
        status: DeviceStatus::Pending,
    })
}

pub async fn device_requests_are_stored_once_and_found_by_user_code(s: Stores) -> Result<()> {
    let d = device("dev_1", "uc_1")?;
    s.devices.put_device(&d).await?;
    ensure!(s.devices.device_by_user_code("uc_1").await? == Some(d.clone()));
    ensure!(s.devices.device_by_user_code("uc_2").await?.is_none());
    // The same device code, or the same user code, is refused whole: nothing of it stays.
    ensure!(matches!(s.devices.put_device(&device("dev_1", "uc_2")?).await, Err(StoreError::AlreadyExists)));
    ensure!(s.devices.device_by_user_code("uc_2").await?.is_none(), "a refused request left its pointer");
    ensure!(matches!(s.devices.put_device(&device("dev_2", "uc_1")?).await, Err(StoreError::AlreadyExists)));
    ensure!(s.devices.poll_device("dev_2", "cl_1", at(T)).await? == Poll::Missing, "a refused request was stored");
    Ok(())
}

pub async fn poll_device_paces_and_slows_down_by_five_seconds(s: Stores) -> Result<()> {
    s.devices.put_device(&device("dev_1", "uc_1")?).await?;
    let poll = |secs| s.devices.poll_device("dev_1", "cl_1", at(T + secs));
    ensure!(poll(0).await? == Poll::Pending, "the first poll may come at once");
    // Next due at +5: a poll at +3 slows down to 10 s, due at +13.
    ensure!(poll(3).await? == Poll::SlowDown(10));
    ensure!(poll(12).await? == Poll::SlowDown(15), "still early: 15 s, due at +27");
    ensure!(poll(27).await? == Poll::Pending, "on time: due at +42");
    ensure!(poll(42).await? == Poll::Pending, "the grown interval stays");
    ensure!(s.devices.device_by_user_code("uc_1").await?.map(|d| d.interval) == Some(15));
    // Another client's poll, or an unknown code: missing, and nothing changes.
    ensure!(s.devices.poll_device("dev_1", "cl_2", at(T + 43)).await? == Poll::Missing);
    ensure!(s.devices.poll_device("dev_9", "cl_1", at(T + 43)).await? == Poll::Missing);
    ensure!(s.devices.device_by_user_code("uc_1").await?.map(|d| (d.interval, d.next_poll)) == Some((15, T + 57)));
    ensure!(poll(600).await? == Poll::Expired);
    Ok(())
}

pub async fn concurrent_early_polls_each_add_five_seconds(s: Stores) -> Result<()> {
    s.devices.put_device(&device("dev_1", "uc_1")?).await?;
    ensure!(s.devices.poll_device("dev_1", "cl_1", at(T)).await? == Poll::Pending);
    let polls = (0..8).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.devices.poll_device("dev_1", "cl_1", at(T + 1)).await })
    });
    let mut intervals = Vec::new();
    for p in polls {
        match p.await?? {
            Poll::SlowDown(i) => intervals.push(i),
            other => anyhow::bail!("an early poll got {other:?}"),
        }
    }
    intervals.sort_unstable();
    ensure!(intervals == (2..=9).map(|k| k * 5).collect::<Vec<_>>(), "lost or doubled additions: {intervals:?}");
    ensure!(s.devices.device_by_user_code("uc_1").await?.map(|d| d.interval) == Some(45));
    Ok(())
}

pub async fn decide_device_once_with_its_approval_in_the_same_write(s: Stores) -> Result<()> {
    s.devices.put_device(&device("dev_1", "uc_1")?).await?;
    s.devices.put_device(&device("dev_2", "uc_2")?).await?;
    s.devices.put_device(&device("dev_3", "uc_3")?).await?;
    let approval = code(&DeviceGrant::approval_hash("dev_1"))?;
    // Of concurrent decisions (allow and deny alike) exactly one applies.
    let decisions = (0..8).map(|i| {
        let (s, approval) = (s.clone(), approval.clone());
        tokio::spawn(async move {
            let a = (i % 2 == 0).then_some(&approval);
            s.devices.decide_device("dev_1", a, at(T + 10)).await.map(|won| (won, i % 2 == 0))
        })
    });
    let mut winners = Vec::new();
    for d in decisions {
        let (won, allowed) = d.await??;
        if won {
            winners.push(allowed);
        }
    }
    ensure!(winners.len() == 1, "{winners:?}");
    let stored = s.codes.code(&approval.code_hash).await?;
    if winners[0] {
        ensure!(stored.is_some_and(|c| c.sub == "usr_1"), "the approval was not stored with the decision");
        ensure!(s.devices.poll_device("dev_1", "cl_1", at(T + 11)).await? == Poll::Approved);
    } else {
        ensure!(stored.is_none(), "a denial stored an approval");
        ensure!(s.devices.poll_device("dev_1", "cl_1", at(T + 11)).await? == Poll::Denied);
    }
    ensure!(s.devices.decide_device("dev_2", None, at(T + 10)).await?);
    ensure!(s.devices.poll_device("dev_2", "cl_1", at(T + 11)).await? == Poll::Denied);
    ensure!(s.devices.device_by_user_code("uc_2").await?.map(|d| d.status) == Some(DeviceStatus::Denied));
    // Expired, or unknown: no decision, nothing stored.
    let late = code(&DeviceGrant::approval_hash("dev_3"))?;
    ensure!(!s.devices.decide_device("dev_3", Some(&late), at(T + 600)).await?);
    ensure!(s.codes.code(&late.code_hash).await?.is_none());
    ensure!(!s.devices.decide_device("dev_9", None, at(T + 10)).await?);
    Ok(())
}
