//! Users and clients: `UserStore` (a username claim item and the user item, written
//! together) and `ClientStore`.
use super::*;
use aws_sdk_dynamodb::types::AttributeValue;

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut pointer = item::sub_key(&user.sub);
        pointer.insert("username_key".into(), s(user.username.key()));
        let items = vec![self.put_new_item(Item::from(user))?, self.put_new_item(pointer)?];
        match self.transact(items, "Failed to create a user in DynamoDB").await? {
            Transacted::Done => Ok(()),
            Transacted::ConditionFailed(_) => Err(StoreError::AlreadyExists),
            // Another registration of the same name (or sub) was in flight: if it won, this
            // one is a duplicate, as a failed condition would have said.
            Transacted::Conflicted => match self.user_by_username(&user.username.key()).await? {
                Some(_) => Err(StoreError::AlreadyExists),
                None => Err(StoreError::Backend(anyhow::anyhow!("creating a user kept conflicting in DynamoDB"))),
            },
        }
    }

    async fn user_by_username(&self, username_key: &str) -> Result<Option<User>, StoreError> {
        self.get(item::user_key(username_key), "Failed to read a user from DynamoDB")
            .await?
            .map(User::try_from)
            .transpose()
    }

    async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, StoreError> {
        let Some(pointer) = self.get(item::sub_key(sub), "Failed to read a user pointer from DynamoDB").await? else {
            return Ok(None);
        };
        self.user_by_username(&get_s(&pointer, "username_key")?).await
    }

    async fn update_password_hash(&self, sub: &str, password_hash: &str) -> Result<(), StoreError> {
        let Some(pointer) = self.get(item::sub_key(sub), "Failed to read a user pointer from DynamoDB").await? else {
            return Err(StoreError::NotFound);
        };
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::user_key(&get_s(&pointer, "username_key")?)))
            .update_expression("SET password_hash = :h")
            .condition_expression("attribute_exists(pk) AND #sub = :sub")
            .expression_attribute_names("#sub", "sub")
            .expression_attribute_values(":h", s(password_hash))
            .expression_attribute_values(":sub", s(sub))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(backend("Failed to update a password hash in DynamoDB")(e)),
        }
    }

    async fn set_disabled(&self, sub: &str, disabled: bool) -> Result<(), StoreError> {
        let Some(pointer) = self.get(item::sub_key(sub), "Failed to read a user pointer from DynamoDB").await? else {
            return Err(StoreError::NotFound);
        };
        let update = if disabled { "SET #d = :t" } else { "REMOVE #d" };
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::user_key(&get_s(&pointer, "username_key")?)))
            .update_expression(update)
            .condition_expression("attribute_exists(pk) AND #sub = :sub")
            .expression_attribute_names("#sub", "sub")
            .expression_attribute_names("#d", item::DISABLED)
            .expression_attribute_values(":sub", s(sub));
        if disabled {
            u = u.expression_attribute_values(":t", AttributeValue::Bool(true));
        }
        match u.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(backend("Failed to disable a user in DynamoDB")(e)),
        }
    }

    async fn delete_user(&self, sub: &str) -> Result<bool, StoreError> {
        let Some(pointer) = self.get(item::sub_key(sub), "Failed to read a user pointer from DynamoDB").await? else {
            return Ok(false);
        };
        let links = self
            .query_prefix(item::account_pk(sub), item::IDENTITY_PREFIX, "Failed to list identity links in DynamoDB")
            .await?;
        // The user, its pointer and every link with its account copy, together.
        let mut items = vec![
            self.delete_item(item::user_key(&get_s(&pointer, "username_key")?), "#sub = :sub", Some(sub))?,
            self.delete_item(item::sub_key(sub), "attribute_exists(pk)", None)?,
        ];
        for link in &links {
            let key = item::link_from(link)?.key();
            items.push(self.delete_item(item::identity_key(&key), "#sub = :sub", Some(sub))?);
            items.push(self.delete_item(item::account_identity_key(sub, &key), "attribute_exists(pk)", None)?);
        }
        match self.transact(items, "Failed to delete a user in DynamoDB").await? {
            Transacted::Done => Ok(true),
            Transacted::ConditionFailed(_) => Ok(false),
            Transacted::Conflicted => {
                Err(StoreError::Backend(anyhow::anyhow!("deleting a user kept conflicting in DynamoDB")))
            }
        }
    }
}

#[async_trait]
impl ClientStore for DynamoStore {
    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        self.put_new(Item::from(client), "Failed to create a client in DynamoDB").await
    }

    async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        self.get(item::client_key(client_id), "Failed to read a client from DynamoDB")
            .await?
            .map(Client::try_from)
            .transpose()
    }

    async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        // The operator's listing only: a scan of the client items (no function may scan).
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :p) AND sk = :sk")
                .expression_attribute_values(":p", s("CLIENT#"))
                .expression_attribute_values(":sk", s("CLIENT"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend("Failed to list clients in DynamoDB"))?;
            for item in page.items.unwrap_or_default() {
                out.push(Client::try_from(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(out)
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        self.delete(item::client_key(client_id), "Failed to delete a client in DynamoDB").await
    }
}
