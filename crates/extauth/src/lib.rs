//! Delegating a SASL exchange to an external AMQP authentication server (EnMasse's external authentication service API) (being built for issue 12).
