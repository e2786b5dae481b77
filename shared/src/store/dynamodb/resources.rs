//! Resource servers (`ResourceStore`): one partition, `RESOURCES`, an item per server.
use super::*;
use crate::domain::{ResourceId, ResourceServer};
use crate::store::ResourceStore;

#[async_trait]
impl ResourceStore for DynamoStore {
    async fn put_resource(&self, server: &ResourceServer) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Item::from(server)))
            .send()
            .await
            .map_err(backend("Failed to store a resource server in DynamoDB"))?;
        Ok(())
    }

    async fn resources(&self) -> Result<Vec<ResourceServer>, StoreError> {
        let items = self
            .query_prefix(
                item::RESOURCES_PK.to_owned(),
                item::RESOURCE_PREFIX,
                "Failed to list resource servers in DynamoDB",
            )
            .await?;
        items.into_iter().map(ResourceServer::try_from).collect()
    }

    async fn delete_resource(&self, id: &ResourceId) -> Result<bool, StoreError> {
        self.delete(item::resource_key(id), "Failed to delete a resource server in DynamoDB").await
    }
}
