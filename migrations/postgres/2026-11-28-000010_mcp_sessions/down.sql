DROP TABLE mcp_bus_messages;
DROP TABLE mcp_sessions;
