"""Everything between the socket and a route, framework-level: the model-route table, the byte cap,
bearer token, deadlines, admission, CORS, request ids and access logs, the upload's one path."""
