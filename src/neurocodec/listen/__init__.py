"""Listening tests: MUSHRA (ITU-R BS.1534-3) in the browser.

``neurocodec listen prepare`` codes items into a test folder (:mod:`.prepare`, orders in
:mod:`.plan`), ``neurocodec listen serve`` runs the web app (:mod:`.server`, ratings in
:mod:`.store`), ``neurocodec listen results`` screens raters and plots the scores (:mod:`.results`).
"""
