"""Offers: from a cart to a short list of candidates worth ranking, and how often to offer.

Catalog data types, complement relations (mined and hand-kept), the shortlist rules
(no redundancy, stock, reasons, confidence) and pacing per shopper. No Flask, no SQL.
"""
