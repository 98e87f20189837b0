"""The index as a service: HTTP (http.py), MCP (mcp.py), and the API key rules (auth.py).
Each is a thin shell over `Index`; nothing here ranks, stores or renders."""
