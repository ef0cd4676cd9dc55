"""The routes: one module per resource, each translating HTTP to a call into app.service and back."""
