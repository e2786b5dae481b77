//! Device authorization requests (`DeviceStore`): created with their user-code pointer in
//! one transaction; decided by a conditional update (with the approval's code, in one
//! transaction); polled by conditional updates whose returned old item says what was found.
use super::*;
use crate::domain::{DeviceGrant, DeviceStatus, Poll};
use crate::store::DeviceStore;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use item::device::{self as dev, INTERVAL, NEXT_POLL, STATUS};

/// How often a poll re-decides after its slow-down write lost to a concurrent change.
const POLL_ATTEMPTS: usize = 4;

/// What a conditional update came to: applied (the new item), or refused (the old item,
/// `None` when there was none).
enum Updated {
    Applied(Option<Item>),
    Refused(Option<Item>),
}

impl DynamoStore {
    /// Send one conditional update of the request `device_hash`, its failure's old item
    /// returned; conflicts with a transaction in flight are retried.
    async fn update_device(
        &self,
        device_hash: &str,
        update: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Updated, StoreError> {
        let r = retry_conflicts(|| {
            let mut u = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(dev::device_key(device_hash)))
                .update_expression(update)
                .condition_expression(condition)
                .expression_attribute_names("#st", STATUS)
                .expression_attribute_names("#iv", INTERVAL)
                .expression_attribute_names("#np", NEXT_POLL)
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            for (k, v) in values {
                u = u.expression_attribute_values(*k, v.clone());
            }
            u.send()
        })
        .await;
        match r {
            Ok(out) => Ok(Updated::Applied(out.attributes)),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => Ok(Updated::Refused(c.item.clone())),
                _ => Err(backend("Failed to update a device request in DynamoDB")(e)),
            },
        }
    }
}

/// What a refused poll found in the old item, or `None` for a pending request polled early.
fn settled(old: Option<&Item>, client_id: &str, now: i64) -> Result<Option<Poll>, StoreError> {
    let Some(old) = old else { return Ok(Some(Poll::Missing)) };
    let d = dev::device_from(old)?;
    Ok(Some(if d.client_id != client_id {
        Poll::Missing
    } else if d.expires_at <= now {
        Poll::Expired
    } else {
        match d.status {
            DeviceStatus::Approved => Poll::Approved,
            DeviceStatus::Denied => Poll::Denied,
            DeviceStatus::Pending => return Ok(None),
        }
    }))
}

#[async_trait]
impl DeviceStore for DynamoStore {
    async fn put_device(&self, d: &DeviceGrant) -> Result<(), StoreError> {
        let (request, pointer) = dev::device_items(d);
        let items = vec![self.put_new_item(request)?, self.put_new_item(pointer)?];
        match self.transact(items, "Failed to store a device request in DynamoDB").await? {
            Transacted::Done => Ok(()),
            Transacted::ConditionFailed(_) => Err(StoreError::AlreadyExists),
            Transacted::Conflicted => {
                Err(StoreError::Backend(anyhow::anyhow!("storing a device request kept conflicting")))
            }
        }
    }

    async fn device_by_user_code(&self, user_code_hash: &str) -> Result<Option<DeviceGrant>, StoreError> {
        let what = "Failed to read a device request from DynamoDB";
        let Some(pointer) = self.get(dev::user_code_key(user_code_hash), what).await? else { return Ok(None) };
        let device_hash = get_s(&pointer, dev::DEVICE)?;
        self.get(dev::device_key(&device_hash), what).await?.as_ref().map(dev::device_from).transpose()
    }

    async fn decide_device(
        &self,
        device_hash: &str,
        approval: Option<&AuthCode>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let status = if approval.is_some() { DeviceStatus::Approved } else { DeviceStatus::Denied };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(dev::device_key(device_hash)))
            .update_expression("SET #st = :st")
            .condition_expression(format!("attribute_exists(pk) AND #st = :pending AND {EXPIRES_AT} > :now"))
            .expression_attribute_names("#st", STATUS)
            .expression_attribute_values(":st", s(status.as_str()))
            .expression_attribute_values(":pending", s(DeviceStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .build()
            .map_err(backend("Failed to build a device decision"))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(code) = approval {
            items.push(self.put_new_item(Item::from(code))?);
        }
        match self.transact(items, "Failed to decide a device request in DynamoDB").await? {
            Transacted::Done => Ok(true),
            Transacted::ConditionFailed(reasons) if reason_is(reasons.first(), CONDITION_FAILED) => Ok(false),
            Transacted::ConditionFailed(_) => {
                Err(StoreError::Backend(anyhow::anyhow!("the approval of a device request already exists")))
            }
            // Other writes kept conflicting: nothing of this one applied. Whether a decision
            // did is read, never assumed.
            Transacted::Conflicted => {
                let now_s = now.unix_timestamp();
                let found =
                    self.get(dev::device_key(device_hash), "Failed to read a device request from DynamoDB").await?;
                match found.as_ref().map(dev::device_from).transpose()? {
                    Some(d) if d.status == DeviceStatus::Pending && d.expires_at > now_s => {
                        Err(StoreError::Backend(anyhow::anyhow!("deciding a device request kept conflicting")))
                    }
                    _ => Ok(false),
                }
            }
        }
    }

    async fn poll_device(&self, device_hash: &str, client_id: &str, now: OffsetDateTime) -> Result<Poll, StoreError> {
        let now = now.unix_timestamp();
        let live = format!("attribute_exists(pk) AND client_id = :c AND #st = :pending AND {EXPIRES_AT} > :now");
        let values = [
            (":c", s(client_id)),
            (":pending", s(DeviceStatus::Pending.as_str())),
            (":now", n(now)),
            (":five", n(5)),
            (":now5", n(now + 5)),
        ];
        for _ in 0..POLL_ATTEMPTS {
            // On time: the next poll is due an interval from now.
            let on_time = self
                .update_device(device_hash, "SET #np = :now + #iv", &format!("{live} AND #np <= :now"), &values[..3])
                .await?;
            let old = match on_time {
                Updated::Applied(_) => return Ok(Poll::Pending),
                Updated::Refused(old) => old,
            };
            if let Some(found) = settled(old.as_ref(), client_id, now)? {
                return Ok(found);
            }
            // Early: 5 more seconds, for this poll and every later one (RFC 8628 §3.5); the
            // addition is the store's, so concurrent early polls each add theirs.
            let early = self
                .update_device(
                    device_hash,
                    "SET #iv = #iv + :five, #np = :now5 + #iv",
                    &format!("{live} AND #np > :now"),
                    &values,
                )
                .await?;
            match early {
                Updated::Applied(new) => {
                    let new = new.ok_or_else(|| StoreError::Corrupt("a device poll returned no item".into()))?;
                    return Ok(Poll::SlowDown(get_n(&new, INTERVAL)?));
                }
                Updated::Refused(old) => {
                    if let Some(found) = settled(old.as_ref(), client_id, now)? {
                        return Ok(found);
                    }
                }
            }
        }
        Err(StoreError::Backend(anyhow::anyhow!("polling a device request kept changing under it")))
    }
}
