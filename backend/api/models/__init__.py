"""The API's request and response bodies as pydantic models: validation and the OpenAPI document
both come from them (:mod:`backend.api.validation`, :mod:`backend.api.openapi`)."""
