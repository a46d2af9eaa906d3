//! The MCP tools, over a small in-memory store of notes.
//!
//! The tools do no authorization: by the time rmcp dispatches a call, the
//! HTTP layer ([`crate::http`]) has had the authorization server allow
//! this token to call this tool. The risk of each tool (read, modify,
//! delete) is what the authorization server's tool→scope map is about.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::request::Parts;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde::{Deserialize, Serialize};

use crate::introspection::Caller;

/// Most notes kept: the store is a demonstration, bounded like everything else.
pub const MAX_ITEMS: usize = 1000;
/// Longest note id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest note text, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// The notes, shared by every MCP session. Cheap to clone.
#[derive(Clone, Default, Debug)]
pub struct ItemStore {
    items: Arc<Mutex<BTreeMap<String, String>>>,
}

impl ItemStore {
    /// A store holding `items`.
    pub fn with_items(items: impl IntoIterator<Item = (String, String)>) -> Self {
        ItemStore {
            items: Arc::new(Mutex::new(items.into_iter().collect())),
        }
    }

    // A panic while holding the lock cannot leave a half-written map (every
    // change is one insert or remove), so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<String> {
        self.lock().get(id).cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ItemId {
    /// The note's id.
    pub id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ItemUpdate {
    /// The note's id; created when it does not exist.
    pub id: String,
    /// The note's new text.
    pub text: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ItemList {
    pub ids: Vec<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Item {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Changed {
    pub id: String,
    /// `created`, `updated` or `deleted`.
    pub outcome: String,
    /// The OAuth client that made the change, as introspected.
    pub by_client: Option<String>,
}

fn check_id(id: &str) -> Result<(), ErrorData> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(ErrorData::invalid_params(
            format!("id must be 1–{MAX_ID_LEN} bytes without control characters"),
            None,
        ));
    }
    Ok(())
}

/// The client the HTTP layer put in the request, when there is one.
fn caller(parts: Option<&Parts>) -> Option<String> {
    parts
        .and_then(|p| p.extensions.get::<Caller>())
        .map(|c| c.client_id.clone())
}

/// The rmcp server handler: one per MCP session, all sharing the store.
#[derive(Clone)]
pub struct ItemTools {
    store: ItemStore,
    tool_router: ToolRouter<Self>,
}

impl ItemTools {
    pub fn new(store: ItemStore) -> Self {
        ItemTools {
            store,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl ItemTools {
    #[tool(description = "List the ids of all notes.")]
    async fn list_items(&self) -> Json<ItemList> {
        Json(ItemList {
            ids: self.store.ids(),
        })
    }

    #[tool(description = "Read one note.")]
    async fn get_item(
        &self,
        Parameters(ItemId { id }): Parameters<ItemId>,
    ) -> Result<Json<Item>, ErrorData> {
        check_id(&id)?;
        match self.store.get(&id) {
            Some(text) => Ok(Json(Item { id, text })),
            None => Err(ErrorData::invalid_params(format!("no note {id:?}"), None)),
        }
    }

    #[tool(description = "Create or replace a note.")]
    async fn update_item(
        &self,
        Parameters(ItemUpdate { id, text }): Parameters<ItemUpdate>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Changed>, ErrorData> {
        check_id(&id)?;
        if text.len() > MAX_TEXT_LEN {
            return Err(ErrorData::invalid_params(
                format!("text longer than {MAX_TEXT_LEN} bytes"),
                None,
            ));
        }
        let mut items = self.store.lock();
        if !items.contains_key(&id) && items.len() >= MAX_ITEMS {
            return Err(ErrorData::invalid_params(
                format!("the store is full ({MAX_ITEMS} notes)"),
                None,
            ));
        }
        let outcome = if items.insert(id.clone(), text).is_some() {
            "updated"
        } else {
            "created"
        };
        Ok(Json(Changed {
            id,
            outcome: outcome.into(),
            by_client: caller(ctx.extensions.get::<Parts>()),
        }))
    }

    #[tool(description = "Delete a note.")]
    async fn delete_item(
        &self,
        Parameters(ItemId { id }): Parameters<ItemId>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Changed>, ErrorData> {
        check_id(&id)?;
        if self.store.lock().remove(&id).is_none() {
            return Err(ErrorData::invalid_params(format!("no note {id:?}"), None));
        }
        Ok(Json(Changed {
            id,
            outcome: "deleted".into(),
            by_client: caller(ctx.extensions.get::<Parts>()),
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ItemTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "regwatch-mcp",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "regwatch reference MCP server: notes you can list, read, update and delete.",
            )
    }
}
