"""Automatic call distribution in our ARI application: agents, queues, offers.

Built up over the queues-and-agents issue; ``agent_state`` is its first piece.
"""
