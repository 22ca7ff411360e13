//! An MCP server (streamable-HTTP transport, `rmcp`) whose tool streams
//! progress notifications, with every SSE event kept in an ssehub
//! [`Store`] so a client can drop the connection mid-call and resume with
//! `Last-Event-ID` — no gap, no duplicate.
//!
//! Run it:
//!
//! ```text
//! cargo run -p ssehub-store --features rmcp --example mcp_server -- 127.0.0.1:8000
//! ```
//!
//! Then, with any MCP client pointed at `http://127.0.0.1:8000/mcp`, call
//! the tool `count` with `{"steps": 20, "delay_ms": 200}` and a
//! `progressToken`. By hand with curl:
//!
//! ```text
//! H='-H Content-Type:application/json -H Accept:application/json,text/event-stream'
//! curl -si $H localhost:8000/mcp -d '{"jsonrpc":"2.0","id":1,"method":"initialize",
//!   "params":{"protocolVersion":"2025-06-18","capabilities":{},
//!   "clientInfo":{"name":"curl","version":"1"}}}'          # note Mcp-Session-Id
//! S='-H Mcp-Session-Id:<id> -H Mcp-Protocol-Version:2025-06-18'
//! curl -s $H $S localhost:8000/mcp -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
//! curl -sN $H $S localhost:8000/mcp -d '{"jsonrpc":"2.0","id":2,"method":"tools/call",
//!   "params":{"name":"count","arguments":{"steps":20,"delay_ms":200},
//!   "_meta":{"progressToken":"p1"}}}'                      # Ctrl-C half-way
//! curl -sN $S -H Accept:text/event-stream -H 'Last-Event-ID: <last id seen>' \
//!   localhost:8000/mcp                                      # the rest, exactly
//! ```
//!
//! A resume delivers every event after the id you give, then stays open and
//! delivers the rest of the call as it happens, and closes after the
//! result: one resume gets the whole remainder, whether the call has ended
//! or not. If a resumed stream ends without the result (the server
//! restarted or shed the session), reconnect after the `retry:` interval
//! the stream carried, with the last id you saw; an id the server can no
//! longer serve (evicted, another session's, reclaimed) gets an empty
//! stream. A `Last-Event-ID` that is not ASCII gets `400 Bad Request`.
//!
//! The server logic lives in [`app`] so the end-to-end test
//! (`store/tests/store_rmcp_e2e.rs`) runs the very same server in-process.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use ssehub_store::rmcp::{check_last_event_id, McpEventStore, ScopedSessionManager};
use ssehub_store::Store;

/// The demo server: one tool, `count`, which reports progress step by step.
#[derive(Clone, Debug, Default)]
pub struct ProgressServer;

fn count_tool() -> Tool {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "steps": {"type": "integer", "minimum": 1, "maximum": 10000},
            "delay_ms": {"type": "integer", "minimum": 0, "maximum": 60000}
        }
    });
    let serde_json::Value::Object(schema) = schema else {
        unreachable!("a JSON object literal")
    };
    Tool::new(
        "count",
        "Counts to `steps`, sending a progress notification per step",
        schema,
    )
}

impl ServerHandler for ProgressServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![count_tool()]))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (name == "count").then(count_tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != "count" {
            return Err(ErrorData::invalid_params("unknown tool", None));
        }
        let arg = |name: &str, default: u64, max: u64| {
            request
                .arguments
                .as_ref()
                .and_then(|a| a.get(name))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(default)
                .min(max)
        };
        let steps = arg("steps", 10, 10_000).max(1);
        let delay = Duration::from_millis(arg("delay_ms", 100, 60_000));
        if let Some(token) = context.meta.get_progress_token() {
            for step in 1..=steps {
                let progress = ProgressNotificationParam::new(token.clone(), step as f64)
                    .with_total(steps as f64)
                    .with_message(format!("step {step} of {steps}"));
                // The client may have disconnected: the event is still
                // stored, which is the point.
                let _ = context.peer.notify_progress(progress).await;
                tokio::time::sleep(delay).await;
            }
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("counted to {steps}"))]).into())
    }
}

/// Answers a request whose `Last-Event-ID` `rmcp` would misread with 400.
async fn refuse_bad_last_event_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match check_last_event_id(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => (
            axum::http::StatusCode::BAD_REQUEST,
            format!("Bad Request: {error}"),
        )
            .into_response(),
    }
}

/// The HTTP app: the MCP endpoint at `/mcp`, events kept in `events`.
pub fn app(events: Arc<McpEventStore>) -> axum::Router {
    let sessions = Arc::new(ScopedSessionManager::new(events));
    let mut config = StreamableHttpServerConfig::default();
    config.sse_keep_alive = Some(Duration::from_secs(15));
    let service = StreamableHttpService::new(|| Ok(ProgressServer), sessions, config);
    axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(refuse_bad_last_event_id))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    // 64 MiB for every session of the process; idle sessions go after 10 min.
    let events = Arc::new(McpEventStore::new(Arc::new(Store::new(64 << 20))));
    let _reclaimer = events.spawn_reclaimer(Duration::from_secs(30));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("MCP server on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, app(events)).await
}
