"""The wire contract shared by edge and cloud: passes, request signing, MQTT topics, sync models."""
