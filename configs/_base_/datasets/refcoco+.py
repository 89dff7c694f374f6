# refcoco+ (splitBy unc): refcoco.py with another REFER folder; evaluation on val
# (testA / testB via --cfg-options test_dataloader.dataset.split=testA).
_base_ = ['./refcoco.py']
ref = dict(dataset='refcoco+', split_by='unc')
train_dataloader = dict(dataset=ref)
val_dataloader = dict(dataset=ref)
test_dataloader = val_dataloader
