"""The QuestCity bundle: backend, policy library, monitor and status page under one command."""
