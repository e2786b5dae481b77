//! Users and clients: `UserStore` (a username claim item and the user item, written
//! together) and `ClientStore`.
use super::*;

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
}
