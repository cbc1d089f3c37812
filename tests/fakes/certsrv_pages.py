"""The HTML pages the certsrv simulator serves.

Shaped like the pages of AD CS web enrollment as clients scrape them: CRLF line
ends, sentences wrapped across lines, the certificate link in a script line for
browsers and as a plain ``&amp;Enc=`` link otherwise. Written from the public
descriptions of certsrv's behaviour, not copied from a server.
"""

from __future__ import annotations

import base64
import html


def crlf(text: str) -> str:
    """Normalise a page to CRLF line ends, as IIS serves them."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _page(title: str, body: str) -> str:
    return crlf(
        f"""<HTML>
<Head>
\t<Meta HTTP-Equiv="Content-Type" Content="text/html; charset=UTF-8">
\t<Title>Microsoft Active Directory Certificate Services</Title>
</Head>
<Body BgColor=#FFFFFF LINK=#0000FF VLINK=#0000FF ALINK=#0000FF><Font ID=locPageFont Face="Arial">
<Table Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080>
<TR><TD><Font Color=#FFFFFF><LocID ID=locMSCertSrv>
\t<Font Face="Arial" Size=-1><B><I>Microsoft</I></B> Active Directory Certificate Services
\t&nbsp;--&nbsp;&nbsp;Simulated CA</Font></LocID></Font></TD></TR>
</Table>
<P ID=locPageTitle> <B> {title} </B></P>
{body}
</Font>
</Body>
</HTML>
"""
    )


def issued_page(req_id: int, browser: bool) -> str:
    """certfnsh.asp after an issued request; browsers get the script form of the link."""
    if browser:
        link = f"""<Script Language="JavaScript">
\tfunction getEncoding() {{ return "Enc=b64"; }}
\tvar sCertUrl = "certnew.cer?ReqID={req_id}&"+getEncoding();
</Script>
<A Href="#" OnClick="location=sCertUrl;">Download certificate</A>"""
    else:
        link = f"""<A Href="certnew.cer?ReqID={req_id}&amp;Enc=bin">DER encoded</A> or
<A Href="certnew.cer?ReqID={req_id}&amp;Enc=b64">Base 64 encoded</A><Br>
<A Href="certnew.p7b?ReqID={req_id}&amp;Enc=bin">Download certificate chain</A>"""
    return _page(
        "Certificate Issued",
        f"""<P ID=locPageDesc>The certificate you requested
was issued to you.</P>
{link}""",
    )


def pending_page(req_id: int) -> str:
    """certfnsh.asp after a request that waits for a certificate manager."""
    return _page(
        "Certificate Pending",
        f"""<P ID=locPageDesc> Your certificate request has been received. However, you
must wait for an administrator to issue the certificate you requested.
</P>
<P> Your Request Id is
{req_id}.
</P>
<P ID=locRequest> Please return to this web site in a day or two to retrieve
your certificate.</P>""",
    )


def denied_page(req_id: int, message: str) -> str:
    """certfnsh.asp after a denied request, with the quoted disposition message."""
    return _page(
        "Certificate Request Denied",
        f"""<P ID=locPageDesc> Your certificate request was denied.</P>
<P> Your Request Id is {req_id}.
The disposition message is "{html.escape(message, quote=False)}".</P>
<P> Contact your administrator for further information.</P>""",
    )


def disposition_page(message: str) -> str:
    """certnew.cer when there is no certificate (yet): a table with the disposition."""
    return _page(
        "Certificate Services Error",
        f"""<P ID=locPageDesc> The certificate is not available.</P>
<Table Border=0>
<TR><TD>Disposition message:</TD><TD>{html.escape(message, quote=False)}
</TD></TR>
</Table>""",
    )


def error_page(text: str) -> str:
    """A certsrv error page without a disposition (unknown request, bad form)."""
    return _page("Error", f"<P ID=locPageDesc>{html.escape(text, quote=False)}</P>")


def unauthorized_page() -> str:
    """The IIS 401 page."""
    return crlf(
        """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN">
<html><head><title>401 - Unauthorized: Access is denied due to invalid credentials.</title></head>
<body><div id="header"><h1>Server Error</h1></div>
<h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2>
<h3>You do not have permission to view this directory or page using the credentials that
you supplied.</h3></body></html>
"""
    )


def carc_page(renewals: int) -> str:
    """certcarc.asp: the CA certificate page with its ``nRenewals`` script variable."""
    return _page(
        "Download a CA Certificate, Certificate Chain, or CRL",
        f"""<Script Language="JavaScript">
\tvar nRenewals={renewals};
\tvar sBaseUrl="certnew.cer?ReqID=CACert&Renewal=";
</Script>
<P ID=locPageDesc>To trust certificates issued from this certification authority,
install this CA certificate.</P>""",
    )


def pem_crlf(der: bytes, label: str = "CERTIFICATE") -> bytes:
    """PEM with 64-column lines and CRLF, as certsrv sends Enc=b64."""
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        "\r\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\r\n"
    ).encode()
