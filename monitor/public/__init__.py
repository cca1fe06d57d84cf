"""Talking to the public (issue #15): the page's and the subscriptions' settings, the signed
links in subscribers' messages, and the sender that delivers those messages.

Settings and tokens import nothing of the daemon: the status page reads them too."""
