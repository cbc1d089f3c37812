"""EJBCA through its REST API.

``connector`` is the Connector; ``wire`` builds and reads the REST messages.
"""
