"""Retention campaigns with a control group (issue 13).

Pure core: ``assignment`` (who is held out), ``stats`` (Wilson and Newcombe intervals,
power), ``segment`` (the safe pilot-segment language), ``analysis`` (uplift, saved
clients, ROI, offer success rate).  With I/O: ``service`` (create and report, on the store)
and ``contacts`` (the contact list and the contact log); ``evidence`` gives the model
card the offer success rate a campaign measured.
"""
