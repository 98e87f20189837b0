"""colretrieve inside other frameworks: an HTTP client shaped like `Index` (client.py) and
retrievers for LangChain (langchain.py) and LlamaIndex (llamaindex.py), over either."""
