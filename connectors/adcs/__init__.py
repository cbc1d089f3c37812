"""Microsoft AD CS through its certsrv web enrollment pages.

``connector`` is the Connector; ``auth`` signs in (Basic, NTLM/Negotiate with channel
binding); ``pages`` reads the answers certsrv gives as HTML.
"""
