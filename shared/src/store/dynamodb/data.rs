//! The demo resource's items (`DataStore`).
use super::*;

#[async_trait]
impl DataStore for DynamoStore {
    async fn put_item(&self, data: &DataItem) -> Result<(), StoreError> {
        self.put_new(Item::from(data), "Failed to store a data item in DynamoDB").await
    }

    async fn items_for(&self, sub: &str, limit: usize) -> Result<Vec<DataItem>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :item)")
            .expression_attribute_values(":pk", s(item::data_pk(sub)))
            .expression_attribute_values(":item", s("ITEM#"))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend("Failed to query data items in DynamoDB"))?;
        out.items.unwrap_or_default().into_iter().map(DataItem::try_from).collect()
    }
}
