"""HTTP publication of revocation data: ``/pkix/<ca>/crl`` and ``/pkix/<ca>/ocsp``."""
